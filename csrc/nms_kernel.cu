// GPU side of the native NMS: one 64-thread block per (row block, column block) pair writes a
// uint64 suppression mask per row box; the host plans the pairs and sweeps (nms_host.cpp).
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "bcedge_nms.h"
#include "nms_plan.h"

namespace {

__global__ void mask_kernel(const float* __restrict__ boxes, const float* __restrict__ areas,
                            const int64_t* __restrict__ classes, const int64_t* __restrict__ rank,
                            const int32_t* __restrict__ pair_row, const int32_t* __restrict__ pair_col, int n,
                            float thr, unsigned long long* __restrict__ mask) {
    const int b = blockIdx.x, t = threadIdx.x;
    const int r0 = pair_row[b] * bcedge::kBlock, c0 = pair_col[b] * bcedge::kBlock;
    __shared__ float col_box[bcedge::kBlock * 4];
    __shared__ float col_area[bcedge::kBlock];
    __shared__ int64_t col_cls[bcedge::kBlock];
    __shared__ int64_t col_rank[bcedge::kBlock];
    if (c0 + t < n) {
        for (int q = 0; q < 4; ++q) col_box[4 * t + q] = boxes[4 * (c0 + t) + q];
        col_area[t] = areas[c0 + t];
        col_cls[t] = classes[c0 + t];
        col_rank[t] = rank[c0 + t];
    }
    __syncthreads();
    const int i = r0 + t;
    if (i >= n) return;
    const float* box_i = boxes + 4 * i;
    const float area_i = areas[i];
    const int64_t cls_i = classes[i], rank_i = rank[i];
    unsigned long long bits = 0;
    const int cols = min(bcedge::kBlock, n - c0);
    for (int k = 0; k < cols; ++k) {
        if (rank_i >= col_rank[k] || cls_i != col_cls[k]) continue;
        if (bcedge::iou_above(box_i, area_i, &col_box[4 * k], col_area[k], thr)) bits |= 1ull << k;
    }
    mask[static_cast<size_t>(b) * bcedge::kBlock + t] = bits;
}

// Device buffers released on every path out.
struct DeviceBuffers {
    std::vector<void*> ptrs;
    ~DeviceBuffers() {
        for (void* p : ptrs) cudaFree(p);
    }
    template <typename T>
    T* alloc_copy(const T* host, size_t count, cudaError_t& err) {
        void* p = nullptr;
        err = cudaMalloc(&p, count * sizeof(T) + 1);
        if (err != cudaSuccess) return nullptr;
        ptrs.push_back(p);
        if (host) err = cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice);
        return static_cast<T*>(p);
    }
};

bool fail(cudaError_t err, const char* what) {
    bcedge::set_error(std::string("bcedge_nms: ") + what + ": " + cudaGetErrorString(err));
    return false;
}

}  // namespace

extern "C" {

BCEDGE_API int bcedge_nms_device_count(void);

BCEDGE_API int bcedge_nms(const float* boxes, const float* scores, const int64_t* class_ids, int n, float iou,
                          int64_t* keep_out) {
    bcedge::set_error("");
    if (!bcedge::check_inputs(boxes, scores, class_ids, n, iou, keep_out)) return -1;
    if (n > 0 && bcedge_nms_device_count() == 0) {
        bcedge::set_error("bcedge_nms: no CUDA device (or no driver) found; use bcedge_nms_cpu");
        return -1;
    }
    try {
        bcedge::Plan plan = bcedge::make_plan(boxes, scores, class_ids, n);
        const size_t n_pairs = plan.pair_row.size();
        std::vector<uint64_t> mask(n_pairs * bcedge::kBlock, 0);
        if (n_pairs > 0) {
            DeviceBuffers buf;
            cudaError_t err = cudaSuccess;
            float* d_boxes = buf.alloc_copy(plan.boxes.data(), plan.boxes.size(), err);
            if (err != cudaSuccess) return fail(err, "copy boxes"), -1;
            float* d_areas = buf.alloc_copy(plan.areas.data(), plan.areas.size(), err);
            if (err != cudaSuccess) return fail(err, "copy areas"), -1;
            int64_t* d_cls = buf.alloc_copy(plan.classes.data(), plan.classes.size(), err);
            if (err != cudaSuccess) return fail(err, "copy classes"), -1;
            int64_t* d_rank = buf.alloc_copy(plan.rank.data(), plan.rank.size(), err);
            if (err != cudaSuccess) return fail(err, "copy ranks"), -1;
            int32_t* d_row = buf.alloc_copy(plan.pair_row.data(), n_pairs, err);
            if (err != cudaSuccess) return fail(err, "copy block pairs"), -1;
            int32_t* d_col = buf.alloc_copy(plan.pair_col.data(), n_pairs, err);
            if (err != cudaSuccess) return fail(err, "copy block pairs"), -1;
            unsigned long long* d_mask =
                buf.alloc_copy(static_cast<const unsigned long long*>(nullptr), mask.size(), err);
            if (err != cudaSuccess) return fail(err, "allocate masks"), -1;
            mask_kernel<<<static_cast<unsigned>(n_pairs), bcedge::kBlock>>>(d_boxes, d_areas, d_cls, d_rank, d_row,
                                                                           d_col, n, iou, d_mask);
            err = cudaGetLastError();
            if (err != cudaSuccess) return fail(err, "launch mask kernel"), -1;
            err = cudaMemcpy(mask.data(), d_mask, mask.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost);
            if (err != cudaSuccess) return fail(err, "copy masks back"), -1;
        }
        return bcedge::sweep(plan, mask, keep_out);
    } catch (const std::exception& e) {
        bcedge::set_error(std::string("bcedge_nms: ") + e.what());
        return -1;
    }
}

BCEDGE_API int bcedge_nms_device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" error
        return 0;
    }
    return count;
}

BCEDGE_API int bcedge_nms_has_cuda(void) { return 1; }

}  // extern "C"
