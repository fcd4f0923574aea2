"""The live side of a capture rig: a counting run into its outputs (``run``) and the browser view (``server``)."""
