"""Without Ray, bcedge works as before and ``--engine ray`` names the extra to install."""
from bcedge.testing.no_module import run_without_modules


def test_without_ray_the_command_says_which_extra_to_install(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"not read: the engine is refused first")
    done = run_without_modules(("ray",), f"""
        import sys
        import bcedge.cluster, bcedge.cli   # both import without Ray
        from bcedge.cli import main
        sys.exit(main(["count", {str(image)!r}, "--engine", "ray", "--quiet"]))
    """, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "pip install 'bcedge[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr
