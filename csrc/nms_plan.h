// Host-side plan shared by the CPU and GPU paths: score ranks, spatial order, block pairs, sweep.
#ifndef BCEDGE_NMS_PLAN_H
#define BCEDGE_NMS_PLAN_H

#include <cstdint>
#include <string>
#include <vector>

#ifdef __CUDACC__
#define BCEDGE_HD __host__ __device__
#else
#define BCEDGE_HD
#endif

namespace bcedge {

constexpr int kBlock = 64;

// IoU(i, j) > thr in float32 with the order of operations every bcedge backend uses.
// On the device, __fmul_rn keeps the compiler from fusing w * h into the subtraction (FMA).
BCEDGE_HD inline bool iou_above(const float* a, float area_a, const float* b, float area_b, float thr) {
    float lo_x = a[0] > b[0] ? a[0] : b[0];
    float hi_x = a[2] < b[2] ? a[2] : b[2];
    float lo_y = a[1] > b[1] ? a[1] : b[1];
    float hi_y = a[3] < b[3] ? a[3] : b[3];
    float w = hi_x - lo_x;
    float h = hi_y - lo_y;
    if (w <= 0.0f || h <= 0.0f) return false;
#ifdef __CUDA_ARCH__
    float inter = __fmul_rn(w, h);
#else
    float inter = w * h;
#endif
    float uni = (area_a + area_b) - inter;
    return uni > 0.0f && inter / uni > thr;
}

struct Plan {
    int n = 0;
    std::vector<int64_t> perm;       // spatial position -> original index
    std::vector<float> boxes;        // n * 4, spatial order
    std::vector<float> areas;        // n, spatial order
    std::vector<int64_t> classes;    // n, spatial order
    std::vector<int64_t> rank;       // score rank of each spatial position
    std::vector<int64_t> by_rank;    // spatial position of each rank
    std::vector<int64_t> pair_start; // n_blocks + 1
    std::vector<int32_t> pair_row;
    std::vector<int32_t> pair_col;
};

Plan make_plan(const float* boxes, const float* scores, const int64_t* class_ids, int n);
// Kernel work on the host: mask[b * 64 + t] bit k = box row*64+t suppresses box col*64+k.
void masks_cpu(const Plan& p, float thr, std::vector<uint64_t>& mask);
int sweep(const Plan& p, const std::vector<uint64_t>& mask, int64_t* keep_out);
bool check_inputs(const float* boxes, const float* scores, const int64_t* class_ids, int n, float iou,
                  const int64_t* keep_out);
void set_error(const std::string& message);

}  // namespace bcedge

#endif
