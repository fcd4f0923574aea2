/* bcedge native NMS: class-aware greedy NMS, block-sparse bitmask algorithm (see nms_plan.h).
 *
 * boxes: n x 4 float32 xyxy (row-major); scores: n float32; class_ids: n int64.
 * keep_out: room for n int64; receives the kept indices, highest score first (ties: lower index).
 * Returns the number kept, or -1 on error (then bcedge_nms_last_error() says why).
 * A box j is suppressed by a kept box i of the same class ranked before it when
 * union > 0 and inter / union > iou, computed in float32 (inter = w * h, union = (a_i + a_j) - inter).
 */
#ifndef BCEDGE_NMS_H
#define BCEDGE_NMS_H

#include <stdint.h>

#if defined(_WIN32)
#define BCEDGE_API __declspec(dllexport)
#else
#define BCEDGE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* On the GPU: allocates device memory, copies in, runs the mask kernel, copies masks back, sweeps. */
BCEDGE_API int bcedge_nms(const float* boxes, const float* scores, const int64_t* class_ids, int n,
                          float iou, int64_t* keep_out);
/* The same algorithm on the CPU (the kernel's per-pair work done by host loops): a reference. */
BCEDGE_API int bcedge_nms_cpu(const float* boxes, const float* scores, const int64_t* class_ids, int n,
                              float iou, int64_t* keep_out);
/* Number of CUDA devices usable by bcedge_nms (0 when built without CUDA or no device/driver). */
BCEDGE_API int bcedge_nms_device_count(void);
/* Last error message of this thread ("" if none). */
BCEDGE_API const char* bcedge_nms_last_error(void);
/* 1 when compiled with CUDA support. */
BCEDGE_API int bcedge_nms_has_cuda(void);

#ifdef __cplusplus
}
#endif

#endif
