/* Device code of the GPU tree kernel (tree-cuda); the host glue, the
 * upload and the pipeline are in tree_cuda.c, the layout in cuda_plan.c.
 *
 * A block takes `rows` consecutive rows and stages them in shared memory
 * (when they fit; otherwise each thread reads its row from global memory).
 * The trees go through shared memory in batches of consecutive trees
 * (cuda_plan.h), each copied once per block and then walked by every row
 * of the block, so a tree's nodes are read from device memory once per
 * block instead of once per row. Packed trees are walked level by level
 * without child pointers (i = 2i + 2 - left); the few the packed form
 * cannot express (categorical splits, zero-as-missing, deeper than
 * BS_CUDA_MAX_DEPTH) are walked over their original nodes, with the same
 * rules as the reference (kernels/ref/tree_ref.c).
 *
 * Two ways of spreading the work, chosen by the plan:
 *  - rows: one thread per row (or rpt rows per thread, walked in
 *    lock-step), which adds its leaves in tree order as it goes;
 *  - pairs: tpr threads per row share a batch's trees (thread i takes trees
 *    i, i + tpr, ...), write their leaves to shared memory, and one thread
 *    per row then adds the batch's leaves in tree order.
 * Either way each row's margin is the reference's sum: from the base
 * margin, each tree's (weighted) leaf in model order, in float32, or in
 * double rounded once (with the divisor) for forests that ask for it. The
 * additions and products are the IEEE-rounded intrinsics, so no
 * contraction into fused multiply-adds can change a bit. */
#include <math.h>

#include "cuda_kernels.h"

namespace {

__device__ __forceinline__ bs_cuda_tdesc load_desc(const bs_cuda_tdesc *p) {
  const int4 v = __ldg(reinterpret_cast<const int4 *>(p));
  bs_cuda_tdesc d;
  d.depth = v.x;
  d.group = v.y;
  d.weight = __int_as_float(v.z);
  d.off = (uint32_t)v.w;
  return d;
}

__device__ __forceinline__ bs_cuda_batch load_batch(const bs_cuda_batch *p) {
  const int4 v = __ldg(reinterpret_cast<const int4 *>(p));
  bs_cuda_batch b;
  b.t0 = v.x;
  b.t1 = v.y;
  b.w0 = (uint32_t)v.z;
  b.w1 = (uint32_t)v.w;
  return b;
}

/* kernels/ref/tree_ref.c's cat_member. */
__device__ int cat_member(const uint32_t *bits, const bs_node *nd, float x) {
  const float lo = (nd->flags & BS_NODE_CAT_TRUNCATE) ? -1.0f : 0.0f;
  if (!(x > lo || x == 0.0f) || x >= __fmul_rn((float)nd->cat_words, 32.0f)) return 0;
  const uint32_t c = (uint32_t)(int32_t)x;
  if ((nd->flags & BS_NODE_CAT_EXACT) && (float)c != x) return 0;
  return (bits[nd->cat_off + c / 32] >> (c % 32)) & 1u;
}

/* kernels/ref/tree_ref.c's bs_ref_tree_leaf, over nodes in device memory. */
__device__ float walk_general(const bs_node *nodes, const uint32_t *bits,
                              const float *x) {
  const bs_node *nd = nodes;
  while (!(nd->flags & BS_NODE_LEAF)) {
    const float v = x[nd->feature];
    int left;
    if (isnan(v) || ((nd->flags & BS_NODE_ZERO_MISSING) && fabsf(v) <= 1e-35f))
      left = (nd->flags & BS_NODE_DEFAULT_LEFT) != 0;
    else if (nd->flags & BS_NODE_CATEGORICAL)
      left = cat_member(bits, nd, v) == ((nd->flags & BS_NODE_CAT_IN_SET_LEFT) != 0);
    else
      left = v < nd->value;
    nd = &nodes[left ? nd->left : nd->right];
  }
  return nd->value;
}

/* R rows through one packed tree in lock-step: their loads overlap. */
template <int R>
__device__ __forceinline__ void walk_packed(const uint32_t *tw, int depth,
                                            const float *const *x, float *leaf) {
  const uint2 *nd = reinterpret_cast<const uint2 *>(tw);
  int idx[R];
#pragma unroll
  for (int j = 0; j < R; j++) idx[j] = 0;
  for (int l = 0; l < depth; l++) {
#pragma unroll
    for (int j = 0; j < R; j++) {
      const uint2 q = nd[idx[j]];
      const int f = (int)q.y;
      const float v = x[j][f & 0x7fffffff];
      const bool left = v < __uint_as_float(q.x) || (isnan(v) && f < 0);
      idx[j] = 2 * idx[j] + 2 - (int)left;
    }
  }
  const int internal = (1 << depth) - 1; /* leaves follow 2 * internal words */
#pragma unroll
  for (int j = 0; j < R; j++) leaf[j] = __uint_as_float(tw[internal + idx[j]]);
}

__device__ __forceinline__ void add_leaf(const bs_cuda_tree_args &a, void *acc, int i,
                                         float weight, float leaf) {
  /* The weighted leaf is a float product in both summations, as in the
   * reference. */
  const float v = a.has_weights ? __fmul_rn(weight, leaf) : leaf;
  if (a.plan.dbl) {
    double *d = static_cast<double *>(acc);
    d[i] = __dadd_rn(d[i], (double)v);
  } else {
    float *f = static_cast<float *>(acc);
    f[i] = __fadd_rn(f[i], v);
  }
}

__device__ __forceinline__ void init_acc(const bs_cuda_tree_args &a, void *acc, int lr,
                                         int rows) {
  for (int g = 0; g < a.n_groups; g++) {
    if (a.plan.dbl)
      static_cast<double *>(acc)[g * rows + lr] = 0.0;
    else
      static_cast<float *>(acc)[g * rows + lr] = a.base[g];
  }
}

__device__ __forceinline__ void write_out(const bs_cuda_tree_args &a, const void *acc,
                                          int lr, int rows, float *out) {
  for (int g = 0; g < a.n_groups; g++) {
    float v;
    if (a.plan.dbl) {
      const double s = static_cast<const double *>(acc)[g * rows + lr];
      v = __double2float_rn(__dadd_rn(
          (double)a.base[g], a.divisor > 0 ? __ddiv_rn(s, (double)a.divisor) : s));
    } else {
      v = static_cast<const float *>(acc)[g * rows + lr];
    }
    out[g] = v;
  }
}

/* The block's rows into shared memory, and the batch's words. */
__device__ __forceinline__ void stage_rows(const bs_cuda_tree_args &a, const float *X,
                                           size_t ld, long long row0, int nrows,
                                           float *xs) {
  const int nf = a.n_features;
  for (int i = threadIdx.x; i < nrows * nf; i += blockDim.x) {
    const int r = i / nf, f = i - r * nf;
    xs[r * a.plan.ldx + f] = X[(size_t)(row0 + r) * ld + (size_t)f];
  }
}

__device__ __forceinline__ void stage_batch(const bs_cuda_tree_args &a,
                                            const bs_cuda_batch &b, uint32_t *tw) {
  const uint4 *src = reinterpret_cast<const uint4 *>(a.words + b.w0);
  uint4 *dst = reinterpret_cast<uint4 *>(tw);
  const int n4 = (int)((b.w1 - b.w0) / 4);
  for (int i = threadIdx.x; i < n4; i += blockDim.x) dst[i] = __ldg(src + i);
}

template <int RPT, bool XSH>
__global__ void __launch_bounds__(256)
    tree_rows(const bs_cuda_tree_args a, const float *__restrict__ X, size_t n, size_t ld,
              float *__restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem[];
  float *xs = reinterpret_cast<float *>(smem);
  void *acc = smem + a.plan.off_acc;
  uint32_t *tw = reinterpret_cast<uint32_t *>(smem + a.plan.off_trees);
  const int rows = (int)blockDim.x * RPT;
  const long long row0 = (long long)blockIdx.x * rows;
  const int nrows = (int)min((long long)rows, (long long)n - row0);
  if (XSH) stage_rows(a, X, ld, row0, nrows, xs);
  const float *x[RPT];
  int lr[RPT];
#pragma unroll
  for (int j = 0; j < RPT; j++) {
    lr[j] = (int)threadIdx.x + j * (int)blockDim.x;
    /* Rows past the end walk a copy of the last one and are not written. */
    const int rr = min(lr[j], nrows - 1);
    x[j] = XSH ? xs + rr * a.plan.ldx : X + (size_t)(row0 + rr) * ld;
    init_acc(a, acc, lr[j], rows);
  }
  for (int bi = 0; bi < a.n_batches; bi++) {
    const bs_cuda_batch b = load_batch(a.batches + bi);
    __syncthreads(); /* the previous batch is walked (and the rows staged) */
    stage_batch(a, b, tw);
    __syncthreads();
    for (int t = b.t0; t < b.t1; t++) {
      const bs_cuda_tdesc d = load_desc(a.trees + t);
      float leaf[RPT];
      if (d.depth >= 0) {
        walk_packed<RPT>(tw + (d.off - b.w0), d.depth, x, leaf);
      } else {
#pragma unroll
        for (int j = 0; j < RPT; j++)
          leaf[j] = walk_general(a.nodes + d.off, a.cat_bits, x[j]);
      }
#pragma unroll
      for (int j = 0; j < RPT; j++)
        add_leaf(a, acc, d.group * rows + lr[j], d.weight, leaf[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < RPT; j++)
    if (lr[j] < nrows)
      write_out(a, acc, lr[j], rows, out + (size_t)(row0 + lr[j]) * (size_t)a.n_groups);
}

template <bool XSH>
__global__ void __launch_bounds__(256)
    tree_pairs(const bs_cuda_tree_args a, const float *__restrict__ X, size_t n,
               size_t ld, float *__restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem[];
  float *xs = reinterpret_cast<float *>(smem);
  void *acc = smem + a.plan.off_acc;
  float *leaves = reinterpret_cast<float *>(smem + a.plan.off_leaf);
  uint32_t *tw = reinterpret_cast<uint32_t *>(smem + a.plan.off_trees);
  const int tpr = a.plan.tpr;
  const int rows = (int)blockDim.x / tpr;
  const int lr = (int)threadIdx.x % rows, lane = (int)threadIdx.x / rows;
  const long long row0 = (long long)blockIdx.x * rows;
  const int nrows = (int)min((long long)rows, (long long)n - row0);
  if (XSH) stage_rows(a, X, ld, row0, nrows, xs);
  const int rr = min(lr, nrows - 1);
  const float *x[1] = {XSH ? xs + rr * a.plan.ldx : X + (size_t)(row0 + rr) * ld};
  if (lane == 0) init_acc(a, acc, lr, rows);
  for (int bi = 0; bi < a.n_batches; bi++) {
    const bs_cuda_batch b = load_batch(a.batches + bi);
    __syncthreads(); /* the previous batch's leaves are added */
    stage_batch(a, b, tw);
    __syncthreads();
    for (int t = b.t0 + lane; t < b.t1; t += tpr) {
      const bs_cuda_tdesc d = load_desc(a.trees + t);
      float leaf[1];
      if (d.depth >= 0)
        walk_packed<1>(tw + (d.off - b.w0), d.depth, x, leaf);
      else
        leaf[0] = walk_general(a.nodes + d.off, a.cat_bits, x[0]);
      leaves[(t - b.t0) * rows + lr] = leaf[0];
    }
    __syncthreads();
    if (lane == 0)
      for (int t = b.t0; t < b.t1; t++) {
        const bs_cuda_tdesc d = load_desc(a.trees + t);
        add_leaf(a, acc, d.group * rows + lr, d.weight, leaves[(t - b.t0) * rows + lr]);
      }
  }
  if (lane == 0 && lr < nrows)
    write_out(a, acc, lr, rows, out + (size_t)(row0 + lr) * (size_t)a.n_groups);
}

typedef void (*tree_fn)(const bs_cuda_tree_args, const float *, size_t, size_t, float *);

tree_fn pick(const bs_cuda_tree_plan *p) {
  if (p->mode == BS_CUDA_TREE_PAIRS)
    return p->x_shared ? tree_pairs<true> : tree_pairs<false>;
  switch (p->rpt) {
    case 2:
      return p->x_shared ? tree_rows<2, true> : tree_rows<2, false>;
    case 4:
      return p->x_shared ? tree_rows<4, true> : tree_rows<4, false>;
    default:
      return p->x_shared ? tree_rows<1, true> : tree_rows<1, false>;
  }
}

}  // namespace

extern "C" cudaError_t bs_cuda_tree_setup(const bs_cuda_tree_plan *p) {
  return cudaFuncSetAttribute(pick(p), cudaFuncAttributeMaxDynamicSharedMemorySize,
                              (int)p->smem);
}

extern "C" cudaError_t bs_cuda_tree_launch(const bs_cuda_tree_args *a, const float *x,
                                           size_t n, size_t ld, float *out,
                                           cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  const size_t blocks = (n + (size_t)a->plan.rows - 1) / (size_t)a->plan.rows;
  pick(&a->plan)<<<(unsigned)blocks, a->plan.threads, a->plan.smem, s>>>(*a, x, n, ld,
                                                                         out);
  return cudaGetLastError();
}
