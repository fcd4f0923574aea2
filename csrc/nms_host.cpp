// Host side of the native NMS: plan (ranks, Morton order, block pairs), CPU masks, sweep, C API.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "bcedge_nms.h"
#include "nms_plan.h"

namespace bcedge {

namespace {
thread_local std::string g_error;

uint64_t spread16(uint64_t v) {
    v &= 0xFFFFu;
    v = (v | (v << 8)) & 0x00FF00FFu;
    v = (v | (v << 4)) & 0x0F0F0F0Fu;
    v = (v | (v << 2)) & 0x33333333u;
    v = (v | (v << 1)) & 0x55555555u;
    return v;
}

bool blocks_meet(const std::vector<float>& rects, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
                 int r, int c) {
    const float* a = &rects[4 * r];
    const float* b = &rects[4 * c];
    return lo[c] <= hi[r] && lo[r] <= hi[c] && b[0] < a[2] && a[0] < b[2] && b[1] < a[3] && a[1] < b[3];
}
}  // namespace

void set_error(const std::string& message) { g_error = message; }

bool check_inputs(const float* boxes, const float* scores, const int64_t* class_ids, int n, float iou,
                  const int64_t* keep_out) {
    if (n < 0) { set_error("n must be >= 0"); return false; }
    if (n > 0 && (!boxes || !scores || !class_ids || !keep_out)) { set_error("null pointer argument"); return false; }
    if (!(iou >= 0.0f && iou <= 1.0f)) { set_error("iou threshold must be in [0, 1]"); return false; }
    for (int i = 0; i < n; ++i) {
        if (!std::isfinite(scores[i])) { set_error("scores contain NaN or infinite values"); return false; }
        for (int q = 0; q < 4; ++q)
            if (!std::isfinite(boxes[4 * i + q])) { set_error("boxes contain NaN or infinite coordinates"); return false; }
    }
    return true;
}

Plan make_plan(const float* boxes, const float* scores, const int64_t* class_ids, int n) {
    Plan p;
    p.n = n;
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    std::vector<int64_t> rank(n);
    for (int r = 0; r < n; ++r) rank[order[r]] = r;

    // dense class index, then Morton code of the quantised centre: class-major spatial order
    std::vector<int64_t> sorted_cls(class_ids, class_ids + n);
    std::sort(sorted_cls.begin(), sorted_cls.end());
    sorted_cls.erase(std::unique(sorted_cls.begin(), sorted_cls.end()), sorted_cls.end());
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    std::vector<double> centre(2 * static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        for (int a = 0; a < 2; ++a) {
            double c = 0.5 * (static_cast<double>(boxes[4 * i + a]) + boxes[4 * i + a + 2]);
            centre[2 * i + a] = c;
            lo[a] = std::min(lo[a], c);
            hi[a] = std::max(hi[a], c);
        }
    }
    std::vector<uint64_t> key(n);
    for (int i = 0; i < n; ++i) {
        uint64_t q[2];
        for (int a = 0; a < 2; ++a)
            q[a] = static_cast<uint64_t>((centre[2 * i + a] - lo[a]) / std::max(hi[a] - lo[a], 1e-9) * 65535.0);
        uint64_t dense = std::lower_bound(sorted_cls.begin(), sorted_cls.end(), class_ids[i]) - sorted_cls.begin();
        key[i] = (dense << 32) | spread16(q[0]) | (spread16(q[1]) << 1);
    }
    p.perm.resize(n);
    std::iota(p.perm.begin(), p.perm.end(), 0);
    std::stable_sort(p.perm.begin(), p.perm.end(), [&](int64_t a, int64_t b) { return key[a] < key[b]; });

    p.boxes.resize(4 * static_cast<size_t>(n));
    p.areas.resize(n);
    p.classes.resize(n);
    p.rank.resize(n);
    p.by_rank.resize(n);
    std::vector<int64_t> dense_sp(n);
    for (int s = 0; s < n; ++s) {
        int64_t i = p.perm[s];
        for (int q = 0; q < 4; ++q) p.boxes[4 * s + q] = boxes[4 * i + q];
        const float* b = &p.boxes[4 * s];
        p.areas[s] = (b[2] - b[0]) * (b[3] - b[1]);
        p.classes[s] = class_ids[i];
        p.rank[s] = rank[i];
        p.by_rank[rank[i]] = s;
        dense_sp[s] = static_cast<int64_t>(key[i] >> 32);
    }

    const int nb = (n + kBlock - 1) / kBlock;
    std::vector<float> rects(4 * static_cast<size_t>(nb));
    std::vector<int64_t> cls_lo(nb), cls_hi(nb);
    for (int r = 0; r < nb; ++r) {
        int s0 = r * kBlock, s1 = std::min(n, s0 + kBlock);
        float* rect = &rects[4 * r];
        rect[0] = rect[1] = INFINITY;
        rect[2] = rect[3] = -INFINITY;
        for (int s = s0; s < s1; ++s) {
            const float* b = &p.boxes[4 * s];
            rect[0] = std::min(rect[0], b[0]);
            rect[1] = std::min(rect[1], b[1]);
            rect[2] = std::max(rect[2], b[2]);
            rect[3] = std::max(rect[3], b[3]);
        }
        cls_lo[r] = dense_sp[s0];
        cls_hi[r] = dense_sp[s1 - 1];
    }
    p.pair_start.assign(nb + 1, 0);
    for (int r = 0; r < nb; ++r) {
        for (int c = 0; c < nb; ++c) {
            if (!blocks_meet(rects, cls_lo, cls_hi, r, c)) continue;
            p.pair_row.push_back(r);
            p.pair_col.push_back(c);
        }
        p.pair_start[r + 1] = static_cast<int64_t>(p.pair_row.size());
    }
    return p;
}

void masks_cpu(const Plan& p, float thr, std::vector<uint64_t>& mask) {
    const size_t n_pairs = p.pair_row.size();
    mask.assign(n_pairs * kBlock, 0);
    for (size_t b = 0; b < n_pairs; ++b) {
        const int r0 = p.pair_row[b] * kBlock, c0 = p.pair_col[b] * kBlock;
        for (int t = 0; t < kBlock && r0 + t < p.n; ++t) {
            const int i = r0 + t;
            uint64_t bits = 0;
            for (int k = 0; k < kBlock && c0 + k < p.n; ++k) {
                const int j = c0 + k;
                if (p.rank[i] >= p.rank[j] || p.classes[i] != p.classes[j]) continue;
                if (iou_above(&p.boxes[4 * i], p.areas[i], &p.boxes[4 * j], p.areas[j], thr)) bits |= 1ull << k;
            }
            mask[b * kBlock + t] = bits;
        }
    }
}

int sweep(const Plan& p, const std::vector<uint64_t>& mask, int64_t* keep_out) {
    std::vector<uint64_t> removed((p.n + kBlock - 1) / kBlock, 0);
    int kept = 0;
    for (int q = 0; q < p.n; ++q) {
        const int64_t s = p.by_rank[q];
        const int64_t blk = s / kBlock, lane = s % kBlock;
        if ((removed[blk] >> lane) & 1ull) continue;
        keep_out[kept++] = p.perm[s];
        for (int64_t b = p.pair_start[blk]; b < p.pair_start[blk + 1]; ++b)
            removed[p.pair_col[b]] |= mask[b * kBlock + lane];
    }
    return kept;
}

}  // namespace bcedge

extern "C" {

BCEDGE_API int bcedge_nms_cpu(const float* boxes, const float* scores, const int64_t* class_ids, int n, float iou,
                              int64_t* keep_out) {
    bcedge::set_error("");
    if (!bcedge::check_inputs(boxes, scores, class_ids, n, iou, keep_out)) return -1;
    try {
        bcedge::Plan plan = bcedge::make_plan(boxes, scores, class_ids, n);
        std::vector<uint64_t> mask;
        bcedge::masks_cpu(plan, iou, mask);
        return bcedge::sweep(plan, mask, keep_out);
    } catch (const std::exception& e) {
        bcedge::set_error(std::string("bcedge_nms_cpu: ") + e.what());
        return -1;
    }
}

BCEDGE_API const char* bcedge_nms_last_error(void) { return bcedge::g_error.c_str(); }

#ifndef BCEDGE_WITH_CUDA
BCEDGE_API int bcedge_nms(const float*, const float*, const int64_t*, int, float, int64_t*) {
    bcedge::set_error("bcedge_nms: library built without CUDA; use bcedge_nms_cpu");
    return -1;
}
BCEDGE_API int bcedge_nms_device_count(void) { return 0; }
BCEDGE_API int bcedge_nms_has_cuda(void) { return 0; }
#endif

}  // extern "C"
