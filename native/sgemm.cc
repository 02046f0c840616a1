// CEG Lab optional native matmul (N-API, no dependencies): C = op(A)·op(B) in float32,
// operating directly on the wasm backend's heap (a Float32Array over wasm memory).
// Built by native/build.mjs (npm install's postinstall) with the machine's g++ and -march=native;
// the register-blocked kernel uses GCC vector extensions, so it compiles to AVX-512, AVX2 or SSE.
#include <node_api.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include <cstdlib>
#include <cstring>
#include <string>
#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#define CEG_DLOPEN 1
#endif

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));  // unaligned access

static const int MR = 12;       // rows of C per micro tile (24 accumulators + 2 B vectors + 1 broadcast <= 32 zmm)
static const int NR = 2 * VW;   // columns of C per micro tile
static const int KC = 256;      // depth block: a KC x NR panel of B stays in L1
#ifndef CEG_MC
#define CEG_MC 120
#endif
static const int MC = CEG_MC;
   // row block (a multiple of MR)
static_assert(MC % MR == 0, "MC must be a multiple of MR");

// C[0..R, 0..NR) (+)= sum_k a(r, k) * B[k, 0..NR); a(r, k) = A[r*rsA + k*csA]; B row stride ldb.
template <int R>
static inline void micro(int kc, const float* A, long rsA, long csA, const float* B, long ldb, float* C, long ldc,
                         bool acc) {
  vf c0[R], c1[R];
  for (int r = 0; r < R; r++) {
    if (acc) {
      c0[r] = *(const vfu*)(C + r * ldc);
      c1[r] = *(const vfu*)(C + r * ldc + VW);
    } else {
      c0[r] = vf{} ;
      c1[r] = vf{};
    }
  }
  for (int k = 0; k < kc; k++) {
    const vf b0 = *(const vfu*)(B + k * ldb);
    const vf b1 = *(const vfu*)(B + k * ldb + VW);
    const float* a = A + k * csA;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
      const float s = a[r * rsA];
      c0[r] += s * b0;
      c1[r] += s * b1;
    }
  }
  for (int r = 0; r < R; r++) {
    *(vfu*)(C + r * ldc) = c0[r];
    *(vfu*)(C + r * ldc + VW) = c1[r];
  }
}

typedef void (*MicroFn)(int, const float*, long, long, const float*, long, float*, long, bool);
static const MicroFn MICROS[MR + 1] = {nullptr,  micro<1>, micro<2>, micro<3>,  micro<4>,  micro<5>, micro<6>,
                                       micro<7>, micro<8>, micro<9>, micro<10>, micro<11>, micro<12>};

static const int NC = 512;      // column block: a packed KC x NC block of B (512 kB) stays in L2
static std::vector<float> packed;
static std::vector<float> packedA;

static std::vector<float> packedTail;

// The columns Nf..N (fewer than NR; all of them when N < NR, e.g. the attention products with a
// head size of 4-18): B's columns are packed into zero-padded KC x NR panels and the same micro
// kernel runs into an MR x NR scratch tile, whose first N - Nf columns are copied to C. Wastes
// up to NR/(N - Nf) of the FLOPs, but vectorised: the plain loops this replaces (generic strides,
// a branch on tB in the inner loop) ran at ~1 GFLOP/s on these shapes.
static void sgemmTail(int M, int N, int Nf, int K, const float* A, long rsA, long csA, const float* B, bool tB, float* C) {
  const int nt = N - Nf;
  packedTail.resize((size_t)KC * NR);
  float* P = packedTail.data();
  alignas(64) float tile[MR * NR];
  for (int pc = 0; pc < K; pc += KC) {
    const int kc = std::min(KC, K - pc);
    const bool acc = pc > 0;
    for (int k = 0; k < kc; k++) {
      for (int j = 0; j < nt; j++) P[k * NR + j] = tB ? B[(long)(Nf + j) * K + pc + k] : B[(long)(pc + k) * N + Nf + j];
      for (int j = nt; j < NR; j++) P[k * NR + j] = 0.f;
    }
    for (int i = 0; i < M; i += MR) {
      const int r = std::min(MR, M - i);
      float* Ci = C + (long)i * N + Nf;
      if (acc)
        for (int q = 0; q < r; q++)
          for (int j = 0; j < nt; j++) tile[q * NR + j] = Ci[(long)q * N + j];
      MICROS[r](kc, A + (long)i * rsA + (long)pc * csA, rsA, csA, P, NR, tile, NR, acc);
      for (int q = 0; q < r; q++)
        for (int j = 0; j < nt; j++) Ci[(long)q * N + j] = tile[q * NR + j];
    }
  }
}

// C[M, N] = op(A)[M, K] · op(B)[K, N], C row-major (ldc = N); a(i, k) = A[i*rsA + k*csA];
// b(k, j) = B[k*N + j], or B[j*K + k] if transB. B is packed per (KC x NC) block into contiguous
// KC x NR panels (GotoBLAS order), which also absorbs the transpose and avoids cache-set conflicts.
static void sgemm(int M, int N, int K, const float* A, long rsA, long csA, const float* B, bool tB, float* C) {
  const int Nf = N - N % NR;
  packed.resize((size_t)KC * NC);
  packedA.resize((size_t)KC * (MC + MR));
  for (int jc = 0; jc < Nf; jc += NC) {
    const int nc = std::min(NC, Nf - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      const bool acc = pc > 0;
      for (int jr = 0; jr < nc; jr += NR) {
        float* P = packed.data() + (long)jr * kc;
        if (!tB) {
          for (int k = 0; k < kc; k++) {
            const float* src = B + (long)(pc + k) * N + jc + jr;
            for (int j = 0; j < NR; j++) P[k * NR + j] = src[j];
          }
        } else {
          for (int j = 0; j < NR; j++) {
            const float* src = B + (long)(jc + jr + j) * K + pc;
            for (int k = 0; k < kc; k++) P[k * NR + j] = src[k];
          }
        }
      }
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = std::min(MC, M - ic);
        // A read with a long stride (transposed A: a(i, k) = A[k·M + i]): pack the mc x kc block into
        // MR-row panels [kc][MR], so the micro kernel reads it contiguously (no TLB/cache-set thrash)
        const bool packA = csA != 1;
        const float* Ab = A + (long)ic * rsA + (long)pc * csA;
        long rs = rsA, cs = csA;
        if (packA) {
          for (int p0 = 0; p0 < mc; p0 += MR) {
            const int r = std::min(MR, mc - p0);
            float* dst = packedA.data() + (long)p0 * kc;
            for (int k = 0; k < kc; k++) {
              const float* src = Ab + (long)p0 * rsA + (long)k * csA;
              for (int q = 0; q < r; q++) dst[k * MR + q] = src[q * rsA];
            }
          }
        }
        for (int jr = 0; jr < nc; jr += NR) {
          const float* P = packed.data() + (long)jr * kc;
          float* Cb = C + jc + jr;
          for (int i = 0; i < mc; i += MR) {
            const int r = std::min(MR, mc - i);
            const float* Ai = packA ? packedA.data() + (long)i * kc : Ab + (long)i * rsA;
            if (packA) { rs = 1; cs = MR; }
            MICROS[r](kc, Ai, rs, cs, P, NR, Cb + (long)(ic + i) * N, N, acc);
          }
        }
      }
    }
  }
  if (Nf < N) sgemmTail(M, N, Nf, K, A, rsA, csA, B, tB, C);
}

// ---------------------------------------------------------------------------------------
// Optional system OpenBLAS (cblas_sgemm), found at run time with dlopen: neither the build nor the
// fallback needs a system package. Single-threaded (OPENBLAS_NUM_THREADS=1 while it loads, so its
// pthread pool is not started, and openblas_set_num_threads(1)). gemmMode 1 (set by the engine when
// it is found): every product goes to OpenBLAS; 0: ours. Chosen globally, not per shape: measured
// per shape of the study's rungs and micro (bench/gemm.ts, docs/performance.md), OpenBLAS was as
// fast or faster on nearly every product, by 3-6x on the narrow attention products (head size
// 4-18), and where ours won the margin was within the load's scatter.
typedef void (*CblasSgemm)(int order, int tA, int tB, int M, int N, int K, float alpha, const float* A, int lda,
                           const float* B, int ldb, float beta, float* C, int ldc);
static CblasSgemm blasSgemm = nullptr;
static std::string blasConfig;  // openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"
static int gemmMode = 0;

static bool loadBlas(const char* file, std::string* why) {
#ifdef CEG_DLOPEN
  if (blasSgemm) return true;
  const bool hadEnv = std::getenv("OPENBLAS_NUM_THREADS") != nullptr;
  if (!hadEnv) setenv("OPENBLAS_NUM_THREADS", "1", 0);
  void* h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!hadEnv) unsetenv("OPENBLAS_NUM_THREADS");
  if (!h) {
    const char* e = dlerror();
    *why = e ? e : "dlopen failed";
    return false;
  }
  CblasSgemm f = (CblasSgemm)dlsym(h, "cblas_sgemm");
  void (*setThreads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
  char* (*config)() = (char* (*)())dlsym(h, "openblas_get_config");
  if (!f || !setThreads) {
    *why = std::string(file) + " has no cblas_sgemm/openblas_set_num_threads (not OpenBLAS?)";
    dlclose(h);
    return false;
  }
  setThreads(1);
  blasSgemm = f;
  blasConfig = config ? config() : "OpenBLAS";
  return true;
#else
  *why = "no dlopen on this platform";
  return false;
#endif
}

static void gemm(int M, int N, int K, const float* A, bool tA, const float* B, bool tB, float* C) {
  if (blasSgemm && gemmMode == 1) {
    // row-major (101); no transpose 111, transpose 112
    blasSgemm(101, tA ? 112 : 111, tB ? 112 : 111, M, N, K, 1.0f, A, tA ? M : K, B, tB ? K : N, 0.0f, C, N);
    return;
  }
  sgemm(M, N, K, A, tA ? 1 : K, tA ? M : 1, B, tB, C);
}

// matmul(heap: Float32Array, aOff, bOff, cOff, batch, M, N, K, transA, transB, aBatchStride, bBatchStride)
// offsets and strides in floats; a batch stride of 0 broadcasts that operand.
static napi_value MatMul(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 12) {
    napi_throw_error(env, nullptr, "matmul: expected 12 arguments");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value ab;
  size_t byteOffset;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &byteOffset) != napi_ok ||
      type != napi_float32_array) {
    napi_throw_type_error(env, nullptr, "matmul: first argument must be a Float32Array");
    return nullptr;
  }
  double v[11];
  for (int i = 0; i < 11; i++) {
    napi_value num;  // booleans (transA, transB) and numbers alike
    if (napi_coerce_to_number(env, argv[i + 1], &num) != napi_ok || napi_get_value_double(env, num, &v[i]) != napi_ok) {
      napi_throw_type_error(env, nullptr, "matmul: arguments 2-12 must be numbers or booleans");
      return nullptr;
    }
  }
  const long aOff = (long)v[0], bOff = (long)v[1], cOff = (long)v[2];
  const int batch = (int)v[3], M = (int)v[4], N = (int)v[5], K = (int)v[6];
  const bool tA = v[7] != 0, tB = v[8] != 0;
  const long sA = (long)v[9], sB = (long)v[10];
  const long need = std::max({aOff + (batch - 1) * sA + (long)M * K, bOff + (batch - 1) * sB + (long)K * N,
                              cOff + (long)batch * M * N});
  if (aOff < 0 || bOff < 0 || cOff < 0 || need > (long)length) {
    napi_throw_range_error(env, nullptr, "matmul: operands lie outside the heap");
    return nullptr;
  }
  float* heap = (float*)data;
  for (int b = 0; b < batch; b++)
    gemm(M, N, K, heap + aOff + b * sA, tA, heap + bOff + b * sB, tB, heap + cOff + (long)b * M * N);
  return nullptr;
}

// loadBlas(file: string) -> "" when loaded (or already), else why not
static napi_value LoadBlas(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char file[4096];
  size_t n = 0;
  if (argc != 1 || napi_get_value_string_utf8(env, argv[0], file, sizeof file, &n) != napi_ok) {
    napi_throw_type_error(env, nullptr, "loadBlas: expected a file name");
    return nullptr;
  }
  std::string why;
  loadBlas(file, &why);
  napi_value r;
  napi_create_string_utf8(env, why.c_str(), NAPI_AUTO_LENGTH, &r);
  return r;
}

// blasConfig() -> openblas_get_config() of the loaded library, or "" when none is loaded
static napi_value BlasConfig(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_create_string_utf8(env, blasSgemm ? blasConfig.c_str() : "", NAPI_AUTO_LENGTH, &r);
  return r;
}

// setGemm(mode): 0 ours for every product, 1 OpenBLAS for every product (when loaded); returns the previous mode
static napi_value SetGemm(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t mode = -1;
  if (argc != 1 || napi_get_value_int32(env, argv[0], &mode) != napi_ok || mode < 0 || mode > 1) {
    napi_throw_range_error(env, nullptr, "setGemm: mode must be 0 or 1");
    return nullptr;
  }
  napi_value r;
  napi_create_int32(env, gemmMode, &r);
  gemmMode = mode;
  return r;
}


// ---------------------------------------------------------------------------------------
// Fused elementwise kernels (src/engine/fused.ts): softmax-cross-entropy and exact GELU.

typedef int vi __attribute__((vector_size(VW * 4)));

// exp(x), Cephes expf polynomial (about 1-2 ulp), vectorised: 2^k · p(r), r = x − k·ln2
static inline vf vexp(vf x) {
  const vf hi = vf{} + 88.3762626647949f, lo = vf{} - 87.3365447504019f;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  vf fx = x * 1.44269504088896341f + 0.5f;
  vi ki = __builtin_convertvector(fx, vi);
  vf kf = __builtin_convertvector(ki, vf);
  vi gt = kf > fx;  // -1 where truncation rounded up (negative fx): floor = trunc − 1
  kf = kf + __builtin_convertvector(gt, vf);
  ki = ki + gt;
  x = x - kf * 0.693359375f - kf * -2.12194440e-4f;
  vf y = ((((1.9875691500e-4f * x + 1.3981999507e-3f) * x + 8.3334519073e-3f) * x + 4.1665795894e-2f) * x +
          1.6666665459e-1f) * x + 5.0000001201e-1f;
  y = y * x * x + x + 1.0f;
  vi e = (ki + 127) << 23;
  return y * (vf)e;
}

static inline float sexp(float x) {
  vf v = vf{} + x;
  return vexp(v)[0];
}

static inline vf vld(const float* p) { return *(const vfu*)p; }
static inline void vst(float* p, vf v) { *(vfu*)p = v; }

// loss = mean_n(lse_n − x[n, t_n]); lse[n] written. Returns the loss (or NaN if a target is out of range).
static double ceForward(const float* x, const int* t, int N, int V, float* lse) {
  double total = 0;
  const int Vf = V - V % VW;
  for (int n = 0; n < N; n++) {
    const float* row = x + (long)n * V;
    vf vm = vf{} - 3.4e38f;
    for (int v = 0; v < Vf; v += VW) { vf a = vld(row + v); vm = a > vm ? a : vm; }
    float m = -3.4e38f;
    for (int i = 0; i < VW; i++) m = vm[i] > m ? vm[i] : m;
    for (int v = Vf; v < V; v++) m = row[v] > m ? row[v] : m;
    vf vs = vf{};
    for (int v = 0; v < Vf; v += VW) vs += vexp(vld(row + v) - m);
    double s = 0;
    for (int i = 0; i < VW; i++) s += vs[i];
    for (int v = Vf; v < V; v++) s += sexp(row[v] - m);
    const double l = m + std::log(s);
    lse[n] = (float)l;
    const int tn = t[n];
    if (tn < 0 || tn >= V) return std::nan("");
    total += l - row[tn];
  }
  return total / N;
}

static void ceBackward(const float* x, const int* t, const float* lse, float g, int N, int V, float* dx) {
  const float s = g / N;
  const int Vf = V - V % VW;
  for (int n = 0; n < N; n++) {
    const float* row = x + (long)n * V;
    float* d = dx + (long)n * V;
    const float l = lse[n];
    for (int v = 0; v < Vf; v += VW) vst(d + v, vexp(vld(row + v) - l) * s);
    for (int v = Vf; v < V; v++) d[v] = sexp(row[v] - l) * s;
    d[t[n]] -= s;
  }
}

// erf by Abramowitz–Stegun 7.1.26 (as tfjs's Erf); also returns exp(−z²) in g
static inline vf verf(vf z, vf* g) {
  vf az = z < 0 ? -z : z;
  vf t = 1.0f / (1.0f + 0.3275911f * az);
  *g = vexp(-az * az);
  vf e = 1.0f - ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * *g;
  return z < 0 ? -e : e;
}

static void geluForward(const float* x, long n, float* y) {
  long i = 0;
  for (; i + VW <= n; i += VW) {
    vf xv = vld(x + i), g;
    vst(y + i, 0.5f * xv * (1.0f + verf(xv * 0.70710678118654752f, &g)));
  }
  for (; i < n; i++) {
    vf xv = vf{} + x[i], g;
    y[i] = (0.5f * xv * (1.0f + verf(xv * 0.70710678118654752f, &g)))[0];
  }
}

static void geluBackward(const float* dy, const float* x, long n, float* dx) {
  long i = 0;
  for (; i + VW <= n; i += VW) {
    vf xv = vld(x + i), g;
    vf e = verf(xv * 0.70710678118654752f, &g);
    vst(dx + i, vld(dy + i) * (0.5f * (1.0f + e) + xv * g * 0.3989422804014327f));
  }
  for (; i < n; i++) {
    vf xv = vf{} + x[i], g;
    vf e = verf(xv * 0.70710678118654752f, &g);
    dx[i] = dy[i] * (0.5f * (1.0f + e) + xv * g * 0.3989422804014327f)[0];
  }
}

// Shared argument parsing: (heap: Float32Array, ...numbers)
static bool args(napi_env env, napi_callback_info info, size_t want, float** heap, size_t* len, double* v) {
  size_t argc = 20;
  napi_value argv[20];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != want) {
    napi_throw_error(env, nullptr, "fused kernel: wrong number of arguments");
    return false;
  }
  napi_typedarray_type type;
  void* data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[0], &type, len, &data, &ab, &off) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, nullptr, "fused kernel: first argument must be a Float32Array");
    return false;
  }
  *heap = (float*)data;
  for (size_t i = 1; i < argc; i++) {
    napi_value num;
    if (napi_coerce_to_number(env, argv[i], &num) != napi_ok || napi_get_value_double(env, num, &v[i - 1]) != napi_ok) {
      napi_throw_type_error(env, nullptr, "fused kernel: arguments after the heap must be numbers");
      return false;
    }
  }
  return true;
}

static bool inHeap(napi_env env, size_t len, long off, long n) {
  if (off < 0 || n < 0 || off + n > (long)len) {
    napi_throw_range_error(env, nullptr, "fused kernel: operands lie outside the heap");
    return false;
  }
  return true;
}

// ceForward(heap, xOff, tOff (int32 elements), N, V, lseOff) -> loss
static napi_value CeForward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[5];
  if (!args(env, info, 6, &h, &len, v)) return nullptr;
  const long x = (long)v[0], t = (long)v[1], N = (long)v[2], V = (long)v[3], l = (long)v[4];
  if (!inHeap(env, len, x, N * V) || !inHeap(env, len, t, N) || !inHeap(env, len, l, N)) return nullptr;
  double loss = ceForward(h + x, (const int*)(h + t), (int)N, (int)V, h + l);
  napi_value r;
  napi_create_double(env, loss, &r);
  return r;
}

// ceBackward(heap, xOff, tOff, lseOff, g, N, V, dxOff)
static napi_value CeBackward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[7];
  if (!args(env, info, 8, &h, &len, v)) return nullptr;
  const long x = (long)v[0], t = (long)v[1], l = (long)v[2], N = (long)v[4], V = (long)v[5], d = (long)v[6];
  if (!inHeap(env, len, x, N * V) || !inHeap(env, len, t, N) || !inHeap(env, len, l, N) || !inHeap(env, len, d, N * V)) return nullptr;
  const int* tt = (const int*)(h + t);
  for (long n = 0; n < N; n++)
    if (tt[n] < 0 || tt[n] >= V) {
      napi_throw_range_error(env, nullptr, "ceBackward: target outside the vocabulary");
      return nullptr;
    }
  ceBackward(h + x, tt, h + l, (float)v[3], (int)N, (int)V, h + d);
  return nullptr;
}

// geluForward(heap, xOff, n, yOff)
static napi_value GeluForward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[3];
  if (!args(env, info, 4, &h, &len, v)) return nullptr;
  const long x = (long)v[0], n = (long)v[1], y = (long)v[2];
  if (!inHeap(env, len, x, n) || !inHeap(env, len, y, n)) return nullptr;
  geluForward(h + x, n, h + y);
  return nullptr;
}

// geluBackward(heap, dyOff, xOff, n, dxOff)
static napi_value GeluBackward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[4];
  if (!args(env, info, 5, &h, &len, v)) return nullptr;
  const long dy = (long)v[0], x = (long)v[1], n = (long)v[2], dx = (long)v[3];
  if (!inHeap(env, len, dy, n) || !inHeap(env, len, x, n) || !inHeap(env, len, dx, n)) return nullptr;
  geluBackward(h + dy, h + x, n, h + dx);
  return nullptr;
}


// Causal softmax of attention scores (src/engine/fused.ts causalSoftmax): x [rows, T] where row r is
// query position i = r mod T; y[j] = softmax_j≤i(scale·x[j]) and 0 for j > i (the additive -1e9
// mask of the plain attention makes those exactly 0 too).
static void causalSoftmaxForward(const float* x, long rows, int T, float scale, float* y) {
  for (long r = 0; r < rows; r++) {
    const float* xr = x + r * T;
    float* yr = y + r * T;
    const int n = (int)(r % T) + 1, nf = n - n % VW;
    vf vm = vf{} - 3.4e38f;
    for (int j = 0; j < nf; j += VW) { vf a = vld(xr + j) * scale; vm = a > vm ? a : vm; }
    float m = -3.4e38f;
    for (int i = 0; i < VW; i++) m = vm[i] > m ? vm[i] : m;
    for (int j = nf; j < n; j++) { const float a = xr[j] * scale; m = a > m ? a : m; }
    vf vs = vf{};
    for (int j = 0; j < nf; j += VW) { vf e = vexp(vld(xr + j) * scale - m); vst(yr + j, e); vs += e; }
    float s = 0;
    for (int i = 0; i < VW; i++) s += vs[i];
    for (int j = nf; j < n; j++) { const float e = sexp(xr[j] * scale - m); yr[j] = e; s += e; }
    for (int j = 0; j < n; j++) yr[j] = yr[j] / s;
    for (int j = n; j < T; j++) yr[j] = 0.f;
  }
}

// dx[j] = scale·y[j]·(dy[j] − Σ_k≤i dy[k]·y[k]) for j ≤ i, 0 beyond.
static void causalSoftmaxBackward(const float* dy, const float* y, long rows, int T, float scale, float* dx) {
  for (long r = 0; r < rows; r++) {
    const float* dr = dy + r * T;
    const float* yr = y + r * T;
    float* o = dx + r * T;
    const int n = (int)(r % T) + 1, nf = n - n % VW;
    vf vd = vf{};
    for (int j = 0; j < nf; j += VW) vd += vld(dr + j) * vld(yr + j);
    float d = 0;
    for (int i = 0; i < VW; i++) d += vd[i];
    for (int j = nf; j < n; j++) d += dr[j] * yr[j];
    for (int j = 0; j < n; j++) o[j] = scale * (yr[j] * (dr[j] - d));
    for (int j = n; j < T; j++) o[j] = 0.f;
  }
}

// causalSoftmaxForward(heap, xOff, rows, T, scale, yOff)
static napi_value CausalSoftmaxForward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[5];
  if (!args(env, info, 6, &h, &len, v)) return nullptr;
  const long x = (long)v[0], rows = (long)v[1], T = (long)v[2], y = (long)v[4];
  if (T <= 0 || !inHeap(env, len, x, rows * T) || !inHeap(env, len, y, rows * T)) return nullptr;
  causalSoftmaxForward(h + x, rows, (int)T, (float)v[3], h + y);
  return nullptr;
}

// causalSoftmaxBackward(heap, dyOff, yOff, rows, T, scale, dxOff)
static napi_value CausalSoftmaxBackward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[6];
  if (!args(env, info, 7, &h, &len, v)) return nullptr;
  const long dy = (long)v[0], y = (long)v[1], rows = (long)v[2], T = (long)v[3], dx = (long)v[5];
  if (T <= 0 || !inHeap(env, len, dy, rows * T) || !inHeap(env, len, y, rows * T) || !inHeap(env, len, dx, rows * T)) return nullptr;
  causalSoftmaxBackward(h + dy, h + y, rows, (int)T, (float)v[4], h + dx);
  return nullptr;
}

// ---------------------------------------------------------------------------------------
// Causal self-attention of short contexts in one kernel per direction (src/engine/fused.ts
// causalAttention): from the packed projection qkv [B·T, 3C] (q | k | v, head h at columns
// h·hs .. h·hs+hs of each) straight to y [B·T, C] with the heads merged, instead of a split, three
// head transposes, q·kᵀ, the causal softmax, att·v and the transpose back (and their gradients).
// Per (batch, head): K and V are gathered transposed ([hs][T], rows padded to a vector), so every
// inner loop runs over key positions j <= i, vectorised; only the causal half of the scores is computed.
// The probabilities P [B, H, T, T] (zero above the diagonal) are saved for the backward pass.

static std::vector<float> attnScratch;

// K-, V- and their gradients are kept transposed, M[d·Tp + j] (d < hs, j < Tp = T rounded up to a
// vector, zero beyond T); rows x over keys are zero-padded to Tp. Four independent accumulators per
// loop, so the FMAs are not one latency-bound chain (hs and n are small: 4-32 and <= 128).
// out[j] = Σ_d w[d]·M[d][j] for the nb vectors j < nb·VW
static inline void wTimesM(const float* w, const float* M, int hs, int Tp, int nb, float* out) {
  int jb = 0;
  for (; jb + 4 <= nb; jb += 4) {
    vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
    const float* m = M + jb * VW;
    for (int d = 0; d < hs; d++) {
      const float c = w[d];
      const float* r = m + (long)d * Tp;
      a0 += c * vld(r); a1 += c * vld(r + VW); a2 += c * vld(r + 2 * VW); a3 += c * vld(r + 3 * VW);
    }
    vst(out + jb * VW, a0); vst(out + (jb + 1) * VW, a1); vst(out + (jb + 2) * VW, a2); vst(out + (jb + 3) * VW, a3);
  }
  for (; jb < nb; jb++) {
    vf a = vf{};
    for (int d = 0; d < hs; d++) a += w[d] * vld(M + (long)d * Tp + jb * VW);
    vst(out + jb * VW, a);
  }
}

static inline float hsum(vf a) {
  float s = 0;
  for (int i = 0; i < VW; i++) s += a[i];
  return s;
}

// out[d] = Σ_j x[j]·M[d][j] over the nb vectors (x zero-padded)
static inline void xDotM(const float* x, const float* M, int hs, int Tp, int nb, float* out) {
  int d = 0;
  for (; d + 4 <= hs; d += 4) {
    vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
    const float* m = M + (long)d * Tp;
    for (int jb = 0; jb < nb; jb++) {
      const vf xv = vld(x + jb * VW);
      a0 += xv * vld(m + jb * VW); a1 += xv * vld(m + Tp + jb * VW); a2 += xv * vld(m + 2L * Tp + jb * VW); a3 += xv * vld(m + 3L * Tp + jb * VW);
    }
    out[d] = hsum(a0); out[d + 1] = hsum(a1); out[d + 2] = hsum(a2); out[d + 3] = hsum(a3);
  }
  for (; d < hs; d++) {
    vf a = vf{};
    for (int jb = 0; jb < nb; jb++) a += vld(x + jb * VW) * vld(M + (long)d * Tp + jb * VW);
    out[d] = hsum(a);
  }
}

// M[d][j] += w[d]·x[j] over the nb vectors
static inline void addOuter(float* M, const float* w, const float* x, int hs, int Tp, int nb) {
  for (int d = 0; d < hs; d++) {
    const float c = w[d];
    float* r = M + (long)d * Tp;
    for (int jb = 0; jb < nb; jb++) vst(r + jb * VW, vld(r + jb * VW) + c * vld(x + jb * VW));
  }
}

// M[d][j] += Σ_r w_r[d]·x_r[j] for R <= 4 rows at once (one load and store of M per R rank-1 updates)
static inline void addOuterRows(float* M, const float* const* w, const float* const* x, int R, int hs, int Tp, int nb) {
  for (int d = 0; d < hs; d++) {
    float c[4] = {0.f, 0.f, 0.f, 0.f};
    for (int r = 0; r < R; r++) c[r] = w[r][d];
    float* row = M + (long)d * Tp;
    if (R == 4) {
      for (int jb = 0; jb < nb; jb++) {
        const int o = jb * VW;
        vst(row + o, vld(row + o) + c[0] * vld(x[0] + o) + c[1] * vld(x[1] + o) + c[2] * vld(x[2] + o) + c[3] * vld(x[3] + o));
      }
    } else {
      for (int jb = 0; jb < nb; jb++) {
        vf acc = vld(row + jb * VW);
        for (int r = 0; r < R; r++) acc += c[r] * vld(x[r] + jb * VW);
        vst(row + jb * VW, acc);
      }
    }
  }
}

// gather K and V of (b, h) transposed into Kt, Vt ([hs][Tp], zero beyond T)
static void gatherKV(const float* base, long ld, int C, int T, int hs, int Tp, float* Kt, float* Vt) {
  for (int j = 0; j < T; j++)
    for (int d = 0; d < hs; d++) {
      Kt[(long)d * Tp + j] = base[j * ld + C + d];
      Vt[(long)d * Tp + j] = base[j * ld + 2 * C + d];
    }
}

// Head sizes >= 32 with OpenBLAS connected: the full T x T products are OpenBLAS's (strided straight
// from qkv, no gathers), with the causal softmax and its gradient in place between them. Measured at
// micro (head size 32): the vectorised row loops below do only the causal half of the work but at a
// fraction of a tuned SGEMM's rate there.
static const int ATTN_BLAS_MIN_HS = 32;

static void attnForwardBlas(const float* qkv, int B, int T, int H, int hs, float scale, float* y, float* P) {
  const int C = H * hs;
  const int ld = 3 * C;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const float* q = qkv + (long)b * T * ld + (long)h * hs;
      float* S = P + ((long)b * H + h) * T * T;
      blasSgemm(101, 111, 112, T, T, hs, 1.0f, q, ld, q + C, ld, 0.0f, S, T);      // S = q·kᵀ
      causalSoftmaxForward(S, T, T, scale, S);                                       // in place
      blasSgemm(101, 111, 111, T, hs, T, 1.0f, S, T, q + 2 * C, ld, 0.0f, y + (long)b * T * C + (long)h * hs, C);  // y = P·v
    }
}

static void attnBackwardBlas(const float* dy, const float* qkv, const float* P, int B, int T, int H, int hs, float scale, float* dqkv) {
  const int C = H * hs;
  const int ld = 3 * C;
  attnScratch.resize((size_t)T * T);
  float* dS = attnScratch.data();
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const float* q = qkv + (long)b * T * ld + (long)h * hs;
      const float* p = P + ((long)b * H + h) * T * T;
      const float* g = dy + (long)b * T * C + (long)h * hs;
      float* out = dqkv + (long)b * T * ld + (long)h * hs;
      blasSgemm(101, 111, 112, T, T, hs, 1.0f, g, C, q + 2 * C, ld, 0.0f, dS, T);      // dP = dy·vᵀ
      blasSgemm(101, 112, 111, T, hs, T, 1.0f, p, T, g, C, 0.0f, out + 2 * C, ld);     // dv = Pᵀ·dy
      causalSoftmaxBackward(dS, p, T, T, scale, dS);                                   // dS, in place
      blasSgemm(101, 111, 111, T, hs, T, 1.0f, dS, T, q + C, ld, 0.0f, out, ld);       // dq = dS·k
      blasSgemm(101, 112, 111, T, hs, T, 1.0f, dS, T, q, ld, 0.0f, out + C, ld);       // dk = dSᵀ·q
    }
}

static void attnForward(const float* qkv, int B, int T, int H, int hs, float scale, float* y, float* P) {
  if (blasSgemm && gemmMode == 1 && hs >= ATTN_BLAS_MIN_HS) return attnForwardBlas(qkv, B, T, H, hs, scale, y, P);
  const int C = H * hs;
  const long ld = 3L * C;
  const int Tp = (T + VW - 1) / VW * VW;
  attnScratch.assign((size_t)2 * hs * Tp + Tp + hs, 0.f);
  float* Kt = attnScratch.data();
  float* Vt = Kt + (long)hs * Tp;
  float* sr = Vt + (long)hs * Tp;  // one row of scores / probabilities, zero-padded
  float* qs = sr + Tp;              // q_i · scale
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const float* base = qkv + (long)b * T * ld + (long)h * hs;
      gatherKV(base, ld, C, T, hs, Tp, Kt, Vt);
      for (int i = 0; i < T; i++) {
        const int n = i + 1, nb = (n + VW - 1) / VW;
        for (int d = 0; d < hs; d++) qs[d] = base[i * ld + d] * scale;
        wTimesM(qs, Kt, hs, Tp, nb, sr);
        float m = -3.4e38f;
        for (int j = 0; j < n; j++) m = sr[j] > m ? sr[j] : m;
        vf vs = vf{};
        for (int jb = 0; jb < nb; jb++) { vf e = vexp(vld(sr + jb * VW) - m); vst(sr + jb * VW, e); }
        for (int j = n; j < nb * VW; j++) sr[j] = 0.f;
        for (int jb = 0; jb < nb; jb++) vs += vld(sr + jb * VW);
        const float inv = 1.0f / hsum(vs);
        for (int jb = 0; jb < nb; jb++) vst(sr + jb * VW, vld(sr + jb * VW) * inv);
        float* p = P + (((long)b * H + h) * T + i) * T;
        for (int j = 0; j < n; j++) p[j] = sr[j];
        for (int j = n; j < T; j++) p[j] = 0.f;
        xDotM(sr, Vt, hs, Tp, nb, y + ((long)b * T + i) * C + (long)h * hs);
      }
    }
}

static void attnBackward(const float* dy, const float* qkv, const float* P, int B, int T, int H, int hs, float scale, float* dqkv) {
  if (blasSgemm && gemmMode == 1 && hs >= ATTN_BLAS_MIN_HS) return attnBackwardBlas(dy, qkv, P, B, T, H, hs, scale, dqkv);
  const int C = H * hs;
  const long ld = 3L * C;
  const int Tp = (T + VW - 1) / VW * VW;
  const int R = 4;  // query rows per group: dK and dV are updated once per group
  attnScratch.assign((size_t)4 * hs * Tp + (2 * R + 1) * Tp, 0.f);
  float* Kt = attnScratch.data();
  float* Vt = Kt + (long)hs * Tp;
  float* dKt = Vt + (long)hs * Tp;
  float* dVt = dKt + (long)hs * Tp;
  float* pr = dVt + (long)hs * Tp;  // R rows p_i, zero-padded
  float* ds = pr + (long)R * Tp;    // R rows dS_i
  float* dp = ds + (long)R * Tp;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const float* base = qkv + (long)b * T * ld + (long)h * hs;
      gatherKV(base, ld, C, T, hs, Tp, Kt, Vt);
      for (long e = 0; e < 2L * hs * Tp; e++) dKt[e] = 0.f;  // dKt and dVt
      for (int i0 = 0; i0 < T; i0 += R) {
        const int rows = std::min(R, T - i0);
        const int nbMax = (i0 + rows + VW - 1) / VW;  // vectors covering the last row of the group
        const float* dyr[R];
        const float* qr[R];
        const float* prr[R];
        const float* dsr[R];
        for (int r = 0; r < rows; r++) {
          const int i = i0 + r, n = i + 1;
          float* pi = pr + (long)r * Tp;
          float* dsi = ds + (long)r * Tp;
          const float* p = P + (((long)b * H + h) * T + i) * T;
          for (int j = 0; j < n; j++) pi[j] = p[j];
          for (int j = n; j < nbMax * VW; j++) pi[j] = 0.f;
          const float* dyi = dy + ((long)b * T + i) * C + (long)h * hs;
          wTimesM(dyi, Vt, hs, Tp, nbMax, dp);  // dP = dy_i · Vᵀ
          vf vd = vf{};
          for (int jb = 0; jb < nbMax; jb++) vd += vld(pi + jb * VW) * vld(dp + jb * VW);
          const float D = hsum(vd);
          // dS = scale · p ∘ (dP − Σ p·dP)  (zero where p is)
          for (int jb = 0; jb < nbMax; jb++) vst(dsi + jb * VW, scale * (vld(pi + jb * VW) * (vld(dp + jb * VW) - D)));
          xDotM(dsi, Kt, hs, Tp, nbMax, dqkv + ((long)b * T + i) * ld + (long)h * hs);  // dq_i = dS_i · K
          dyr[r] = dyi; qr[r] = base + i * ld; prr[r] = pi; dsr[r] = dsi;
        }
        addOuterRows(dVt, dyr, prr, rows, hs, Tp, nbMax);  // dV += Σ_i p_iᵀ dy_i
        addOuterRows(dKt, qr, dsr, rows, hs, Tp, nbMax);   // dK += Σ_i dS_iᵀ q_i
      }
      float* out = dqkv + (long)b * T * ld + (long)h * hs;
      for (int j = 0; j < T; j++)
        for (int d = 0; d < hs; d++) {
          out[j * ld + C + d] = dKt[(long)d * Tp + j];
          out[j * ld + 2 * C + d] = dVt[(long)d * Tp + j];
        }
    }
}

// attnForward(heap, qkvOff, B, T, H, hs, scale, yOff, pOff)
static napi_value AttnForward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[8];
  if (!args(env, info, 9, &h, &len, v)) return nullptr;
  const long qkv = (long)v[0], B = (long)v[1], T = (long)v[2], H = (long)v[3], hs = (long)v[4], y = (long)v[6], P = (long)v[7];
  if (B <= 0 || T <= 0 || H <= 0 || hs <= 0 || !inHeap(env, len, qkv, B * T * 3 * H * hs) || !inHeap(env, len, y, B * T * H * hs) ||
      !inHeap(env, len, P, B * H * T * T)) return nullptr;
  attnForward(h + qkv, (int)B, (int)T, (int)H, (int)hs, (float)v[5], h + y, h + P);
  return nullptr;
}

// attnBackward(heap, dyOff, qkvOff, pOff, B, T, H, hs, scale, dqkvOff)
static napi_value AttnBackward(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[9];
  if (!args(env, info, 10, &h, &len, v)) return nullptr;
  const long dy = (long)v[0], qkv = (long)v[1], P = (long)v[2], B = (long)v[3], T = (long)v[4], H = (long)v[5], hs = (long)v[6], dq = (long)v[8];
  if (B <= 0 || T <= 0 || H <= 0 || hs <= 0 || !inHeap(env, len, dy, B * T * H * hs) || !inHeap(env, len, qkv, B * T * 3 * H * hs) ||
      !inHeap(env, len, P, B * H * T * T) || !inHeap(env, len, dq, B * T * 3 * H * hs)) return nullptr;
  attnBackward(h + dy, h + qkv, h + P, (int)B, (int)T, (int)H, (int)hs, (float)v[7], h + dq);
  return nullptr;
}

// sumSquares(heap, off, n) -> Σ x² over heap[off .. off+n) (float vectors per block, double across blocks)
static napi_value SumSquares(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[2];
  if (!args(env, info, 3, &h, &len, v)) return nullptr;
  const long off = (long)v[0], n = (long)v[1];
  if (!inHeap(env, len, off, n)) return nullptr;
  const float* x = h + off;
  double total = 0;
  const long B = 4096;  // float accumulation over short blocks only
  for (long b0 = 0; b0 < n; b0 += B) {
    const long m = std::min(B, n - b0), mf = m - m % VW;
    vf acc = vf{};
    for (long i = 0; i < mf; i += VW) { const vf a = vld(x + b0 + i); acc += a * a; }
    double s = 0;
    for (int i = 0; i < VW; i++) s += acc[i];
    for (long i = mf; i < m; i++) s += (double)x[b0 + i] * x[b0 + i];
    total += s;
  }
  napi_value out;
  napi_create_double(env, total, &out);
  return out;
}

// adamw(heap, p, m, v, g, n, p1, m1, v1, lr, beta1, beta2, eps, decay, bc1, bc2[, gscale]): one pass of AdamW
// on the gradient g·gscale (gscale: the clipping coefficient, folded in; 1 when absent)
// m1 = β1·m + (1−β1)·g; v1 = β2·v + (1−β2)·g²; p1 = p·decay − lr·(m1/bc1)/(sqrt(v1/bc2) + eps)
static napi_value AdamW(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[16];
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, nullptr);
  v[15] = 1.0;
  if (!args(env, info, argc == 17 ? 17 : 16, &h, &len, v)) return nullptr;
  const float gs = (float)v[15];
  const long P = (long)v[0], M = (long)v[1], Vo = (long)v[2], G = (long)v[3], n = (long)v[4], P1 = (long)v[5], M1 = (long)v[6], V1 = (long)v[7];
  for (long o : {P, M, Vo, G, P1, M1, V1})
    if (!inHeap(env, len, o, n)) return nullptr;
  const float lr = (float)v[8], b1 = (float)v[9], b2 = (float)v[10], eps = (float)v[11], decay = (float)v[12];
  const float bc1 = (float)v[13], bc2 = (float)v[14];
  const float* p = h + P; const float* m = h + M; const float* vv = h + Vo; const float* g = h + G;
  float* p1 = h + P1; float* m1 = h + M1; float* v1 = h + V1;
  for (long i = 0; i < n; i++) {
    const float gi = gs == 1.0f ? g[i] : g[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi2 = b2 * vv[i] + (1.0f - b2) * gi * gi;
    m1[i] = mi;
    v1[i] = vi2;
    p1[i] = p[i] * decay - lr * ((mi / bc1) / (std::sqrt(vi2 / bc2) + eps));
  }
  return nullptr;
}


// colsum(heap, src, rows, cols, dst): dst[c] = Σ_r src[r·cols + c] (Sum over leading axes; bias gradients)
static napi_value ColSum(napi_env env, napi_callback_info info) {
  float* h; size_t len; double v[4];
  if (!args(env, info, 5, &h, &len, v)) return nullptr;
  const long src = (long)v[0], rows = (long)v[1], cols = (long)v[2], dst = (long)v[3];
  if (!inHeap(env, len, src, rows * cols) || !inHeap(env, len, dst, cols)) return nullptr;
  const int B = 256;  // columns per block: accumulators stay in L1
  float acc[B];
  for (long c0 = 0; c0 < cols; c0 += B) {
    const long w = std::min<long>(B, cols - c0);
    for (long c = 0; c < w; c++) acc[c] = 0.f;
    for (long r = 0; r < rows; r++) {
      const float* row = h + src + r * cols + c0;
      for (long c = 0; c < w; c++) acc[c] += row[c];
    }
    for (long c = 0; c < w; c++) h[dst + c0 + c] = acc[c];
  }
  return nullptr;
}

static void def(napi_env env, napi_value exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, isa;
  napi_create_function(env, "matmul", NAPI_AUTO_LENGTH, MatMul, nullptr, &fn);
  napi_set_named_property(env, exports, "matmul", fn);
  def(env, exports, "ceForward", CeForward);
  def(env, exports, "ceBackward", CeBackward);
  def(env, exports, "geluForward", GeluForward);
  def(env, exports, "geluBackward", GeluBackward);
  def(env, exports, "adamw", AdamW);
  def(env, exports, "colsum", ColSum);
  def(env, exports, "causalSoftmaxForward", CausalSoftmaxForward);
  def(env, exports, "sumSquares", SumSquares);
  def(env, exports, "causalSoftmaxBackward", CausalSoftmaxBackward);
  def(env, exports, "loadBlas", LoadBlas);
  def(env, exports, "attnForward", AttnForward);
  def(env, exports, "attnBackward", AttnBackward);
  def(env, exports, "blasConfig", BlasConfig);
  def(env, exports, "setGemm", SetGemm);
  const char* name = VW == 16 ? "avx512" : VW == 8 ? "avx2" : "sse";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &isa);
  napi_set_named_property(env, exports, "isa", isa);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
