/*
 * ec_depthwise_mve.c - depthwise convolution with Helium (MVE), CHW (see ec_depthwise_mve.h).
 *
 * Channels go four to a vector: lane i holds channel c + i, so one tap of one output pixel is
 * a gather of the four channels' input values (one plane apart), a load of their four
 * weights, a multiply and an add, and padding is the same for all lanes: a tap outside the
 * input reads pad_value (the input's zero point) for the whole vector, as the reference reads
 * it.  A 3x3 window that lies inside the input takes its nine taps without a test, with the
 * group's weights transposed once into a small array (one load per tap); so does one whose
 * only outside column is its left (right) one, with that column's weights 0 and pad_value
 * times them in its start value.  Other windows that leave the input are clipped tap by tap
 * in a separate routine; with pad_value != 0 (its own copies, so that pad_value 0 pays
 * nothing for it) such a window starts from bias + pad_value * sum(w) and its taps inside add
 * (x - pad_value) * w.  The last group of channels is predicated (inactive lanes load nothing
 * and store nothing).
 *
 * Exactness: each lane's accumulator is the reference's bias plus the same products w * x
 * (|w * x| <= 2^14, exact in int32) and pad_value * w for the taps outside, in another order
 * (exact integer sums: the order does not matter); every partial sum is the bias plus some of
 * those products, so |acc| <= acc_bound <= 2^31 - 1 holds for each.  Requantization is VQRSHL
 * by -s: for s > 0 it computes (acc + 2^(s-1)) >> s without overflow (rounding right shift),
 * which is rule 2's floor(acc / 2^s + 1/2), round half up, negative values and ties included;
 * s = 0 leaves acc; for s < 0 it is acc * 2^-s saturated to int32, and clamping that to
 * [act_min, act_max] (within int32) gives the same as rule 2's clamp-then-shift followed by
 * rule 3.  Then VMAX/VMIN apply rule 3.
 */
#include "ec_depthwise_mve.h"

#include <stddef.h>

#if EC_FAST_MVE

/* What ec_dw_3x3_full reads for its windows, per lane: the accumulator's start value, -shift
 * (VQRSHL by -s shifts right by s), and for a 3x3 kernel tap t's four weights at wt[4t]. */
struct ec_dw_taps {
    int32x4_t start, neg_s;
    int32_t wt[9 * 4];
};

/* What one group of four channels keeps through its planes. */
struct ec_dw_group {
    const int8_t *in, *w; /* the group's first input plane and first filter */
    int8_t *out;          /* its first output plane */
    /* t: start value bias (0 without), the weights; t_l (t_r): the weights with the left (right)
     * column of taps 0, and the start value bias plus pad_value times that column's weights (the
     * padding those windows read there; bias when pad_value is 0) */
    struct ec_dw_taps t, t_l, t_r;
    int32x4_t pad_sum; /* pad_value times the sum of each channel's weights (pad_value != 0 only) */
};

/* The group's channels as lanes: gathers from base (offsets offs), predicated by p unless
 * the group is full (a constant after inlining). */
#define EC_DW_GATHER(base, offs) \
    (full ? vldrbq_gather_offset_s32((base), (offs)) : vldrbq_gather_offset_z_s32((base), (offs), p))

/* acc + x * w, lane by lane (|x * w| <= 2^14, no overflow in int32). */
#define EC_DW_MAC(acc, x, w) vaddq_s32((acc), vmulq_s32((x), (w)))

/* Requantizes acc (rules 2 and 3, see the top of the file) and stores lane i at out[offs_out[i]]. */
static EC_FAST_INLINE void ec_dw_store(int32x4_t acc, const struct ec_dw_group *g, uint32x4_t offs_out,
                                       int32_t act_min, int32_t act_max, int8_t *out, mve_pred16_t p, int full)
{
    acc = vqrshlq_s32(acc, g->t.neg_s);
    acc = vminq_s32(vmaxq_s32(acc, vdupq_n_s32(act_min)), vdupq_n_s32(act_max));
    if (full) {
        vstrbq_scatter_offset_s32(out, offs_out, acc);
    } else {
        vstrbq_scatter_offset_p_s32(out, offs_out, acc, p);
    }
}

/* The geometry of one call. */
struct ec_dw_geo {
    int in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, out_h, out_w;
    int32_t pad_value, act_min, act_max;
    uint32x4_t offs_in, offs_out, offs_w; /* lane i: i planes (input, output) or i filters apart */
};

/* Output pixels [ox, ox_end) of row oy, window clipped to the input tap by tap; the weights
 * from g->t.wt for a 3x3 kernel, else gathered.  full: the group has four channels; padded:
 * pad_value != 0 (both constants after inlining): then a window that leaves the input starts
 * from bias + pad_value * sum(w) and adds (x - pad_value) * w for its taps inside, which sums
 * to bias + the products of the taps inside + pad_value times the weights outside, the
 * reference's sum (every partial sum is bias plus some products x * w or pad_value * w:
 * bounded as the reference's). */
static EC_FAST_INLINE void ec_dw_clipped(const struct ec_dw_geo *d, const struct ec_dw_group *g, int oy,
                                              int ox, int ox_end, mve_pred16_t p, int full, int padded)
{
    const int y0 = oy * d->stride_h - d->pad_top, k_w = d->k_w;
    const int ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + d->k_h > d->in_h ? d->in_h - y0 : d->k_h;
    const int in_w = d->in_w, wide = d->k_h * k_w != 9; /* wide: no g->t.wt */
    int8_t *out = g->out + (long)oy * d->out_w + ox;
    for (; ox < ox_end; ++ox, ++out) {
        const int x0 = ox * d->stride_w - d->pad_left;
        const int kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + k_w > in_w ? in_w - x0 : k_w;
        const int8_t *row = g->in + (long)(y0 + ky0) * in_w + x0;
        const int outside = padded && (ky0 > 0 || ky1 < d->k_h || kx0 > 0 || kx1 < k_w);
        const int32x4_t pad = vdupq_n_s32(outside ? d->pad_value : 0);
        int32x4_t acc = outside ? vaddq_s32(g->t.start, g->pad_sum) : g->t.start;
        int ky, kx;
        for (ky = ky0; ky < ky1; ++ky, row += in_w) {
            for (kx = kx0; kx < kx1; ++kx) {
                const int t = ky * k_w + kx;
                const int32x4_t w = wide ? EC_DW_GATHER(g->w + t, d->offs_w) : vld1q_s32(g->t.wt + 4 * t);
                const int32x4_t x = EC_DW_GATHER(row + kx, d->offs_in);
                acc = EC_DW_MAC(acc, padded ? vsubq_s32(x, pad) : x, w); /* |x - pad| <= 255: exact */
            }
        }
        ec_dw_store(acc, g, d->offs_out, d->act_min, d->act_max, out, p, full);
    }
}

/* One tap in ec_dw_3x3_full's assembly: the four channels' values at base + plane * lane
 * (gather, q7 = the plane offsets), times the tap's four weights (tp->wt[4t .. 4t + 3]), added
 * to the accumulator q0. */
#define EC_DW_TAP(base, t)                                                                                           \
    "vldrb.s32    q1, [" base ", q7]\n\t"                                                                            \
    "vldrw.32     q2, [%[tp], #%c[wt] + " #t " * 16]\n\t"                                                            \
    "vmul.i32     q1, q1, q2\n\t"                                                                                    \
    "vadd.i32     q0, q0, q1\n\t"
#define EC_DW_ROW(row, t0, t1, t2)                                                                                   \
    EC_DW_TAP("%[" row "]", t0) "adds %[b], %[" row "], #1\n\t" EC_DW_TAP("%[b]", t1)                                 \
    "adds %[b], %[" row "], #2\n\t" EC_DW_TAP("%[b]", t2)

/* n > 0 output pixels of a 3x3 kernel for a full group of four channels: the first window's
 * top-left tap at r0, the next stride_w further, start value and weights tp (&g->t, or &g->t_l /
 * &g->t_r for a window whose left / right column lies outside the input: those taps then read
 * a value of the same plane, the last of the row above / the first of the row below, and
 * multiply it by 0, while the padding's products are in the start value).  Nine taps without
 * a test; per pixel 36 instructions for the 36 products and 15 around them.  In assembly:
 * written with intrinsics, the compiler summed the products in another order (legal for
 * integers) and spilled most of them to the stack. */
static void ec_dw_3x3_full(const struct ec_dw_geo *d, const struct ec_dw_taps *tp, const int8_t *r0, int n,
                           int8_t *out)
{
    const int8_t *r1, *r2, *b;
    int32_t in_w = d->in_w, stride = d->stride_w;
    /* volatile: its only effect is the stores (the register outputs go unused) */
    __asm__ __volatile__("vldrw.32     q7, [%[d], #%c[offs_in]]\n\t"
                         "vldrw.32     q3, [%[d], #%c[offs_out]]\n\t"
                         "vldrw.32     q6, [%[tp], #%c[neg_s]]\n\t"
                         "ldr          %[b], [%[d], #%c[lo]]\n\t"
                         "vdup.32      q5, %[b]\n\t"
                         "ldr          %[b], [%[d], #%c[hi]]\n\t"
                         "vdup.32      q4, %[b]\n\t"
                         "1:\n\t"
                         "vldrw.32     q0, [%[tp], #%c[start]]\n\t"
                         "adds         %[r1], %[r0], %[in_w]\n\t"
                         "adds         %[r2], %[r1], %[in_w]\n\t"
                         EC_DW_ROW("r0", 0, 1, 2) EC_DW_ROW("r1", 3, 4, 5) EC_DW_ROW("r2", 6, 7, 8)
                         "vqrshl.s32   q0, q0, q6\n\t" /* rule 2: VQRSHL by -s (see the top of the file) */
                         "vmax.s32     q0, q0, q5\n\t"
                         "vmin.s32     q0, q0, q4\n\t"
                         "vstrb.32     q0, [%[out], q3]\n\t"
                         "adds         %[r0], %[r0], %[stride]\n\t"
                         "adds         %[out], %[out], #1\n\t"
                         "subs         %[n], %[n], #1\n\t"
                         "bne          1b\n\t"
                         : [r0] "+r"(r0), [out] "+r"(out), [n] "+r"(n), [r1] "=&r"(r1), [r2] "=&r"(r2),
                           [b] "=&r"(b)
                         : [in_w] "r"(in_w), [stride] "r"(stride), [tp] "r"(tp), [d] "r"(d),
                           [start] "i"(offsetof(struct ec_dw_taps, start)),
                           [neg_s] "i"(offsetof(struct ec_dw_taps, neg_s)), [wt] "i"(offsetof(struct ec_dw_taps, wt)),
                           [offs_in] "i"(offsetof(struct ec_dw_geo, offs_in)),
                           [offs_out] "i"(offsetof(struct ec_dw_geo, offs_out)),
                           [lo] "i"(offsetof(struct ec_dw_geo, act_min)), [hi] "i"(offsetof(struct ec_dw_geo, act_max))
                         : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "cc", "memory");
}

/* The same for the last, partial group (p: its lanes), in C. */
static void ec_dw_3x3_inside_part(const struct ec_dw_geo *d, const struct ec_dw_group *g, const int8_t *r0, int n,
                                  int8_t *out, mve_pred16_t p)
{
    const int full = 0;
    const long w1 = d->in_w, w2 = 2L * d->in_w;
    const int32_t *wt = g->t.wt;
    for (; n > 0; --n, r0 += d->stride_w, ++out) {
        int32x4_t acc = g->t.start;
        int t;
        for (t = 0; t < 9; ++t) {
            const int8_t *tap = r0 + (t < 3 ? 0 : t < 6 ? w1 : w2) + t % 3;
            acc = EC_DW_MAC(acc, EC_DW_GATHER(tap, d->offs_in), vld1q_s32(wt + 4 * t));
        }
        ec_dw_store(acc, g, d->offs_out, d->act_min, d->act_max, out, p, full);
    }
}

/* All output rows of one group: windows that leave the input go through ec_dw_clipped, the
 * others (3x3) through ec_dw_3x3_inside; output columns [ox_lo, ox_hi) have their windows
 * inside horizontally.  full, padded (pad_value != 0): constants after inlining. */
static EC_FAST_INLINE void ec_dw_group_planes(const struct ec_dw_geo *d, const struct ec_dw_group *g, int ox_lo,
                                              int ox_hi, mve_pred16_t p, int full, int padded)
{
    int oy, ox;
    for (oy = 0; oy < d->out_h; ++oy) {
        const int y0 = oy * d->stride_h - d->pad_top;
        const long row = (long)y0 * d->in_w - d->pad_left; /* + ox * stride_w: a window's top-left tap */
        int8_t *out = g->out + (long)oy * d->out_w;
        if (d->k_h != 3 || d->k_w != 3 || y0 < 0 || y0 + 3 > d->in_h) {
            ec_dw_clipped(d, g, oy, 0, d->out_w, p, full, padded);
            continue;
        }
        for (ox = 0; ox < ox_lo; ++ox) { /* left border: x0 = -1 reads the row above's last value */
            if (full && ox * d->stride_w - d->pad_left == -1 && y0 >= 1 && d->in_w >= 2) {
                ec_dw_3x3_full(d, &g->t_l, g->in + (row + ox * d->stride_w), 1, out + ox);
            } else {
                ec_dw_clipped(d, g, oy, ox, ox + 1, p, full, padded);
            }
        }
        if (ox_lo < ox_hi) {
            if (full) {
                ec_dw_3x3_full(d, &g->t, g->in + (row + ox_lo * d->stride_w), ox_hi - ox_lo, out + ox_lo);
            } else {
                ec_dw_3x3_inside_part(d, g, g->in + (row + ox_lo * d->stride_w), ox_hi - ox_lo, out + ox_lo, p);
            }
        }
        for (ox = ox_hi > ox_lo ? ox_hi : ox_lo; ox < d->out_w; ++ox) {
            /* right border: x0 + 2 = in_w reads the row below's first value, inside the plane */
            if (full && ox * d->stride_w - d->pad_left == d->in_w - 2 && y0 + 3 < d->in_h) {
                ec_dw_3x3_full(d, &g->t_r, g->in + (row + ox * d->stride_w), 1, out + ox);
            } else {
                ec_dw_clipped(d, g, oy, ox, ox + 1, p, full, padded);
            }
        }
    }
}

void ec_depthwise_mve_s8(const int8_t *input, int channels, int in_h, int in_w, const int8_t *weight,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int k_h, int k_w,
                         int stride_h, int stride_w, int pad_top, int pad_left, int32_t pad_value, int8_t *output,
                         int out_h, int out_w, int32_t act_min, int32_t act_max)
{
    const long plane = (long)in_h * in_w, out_plane = (long)out_h * out_w;
    const int taps = k_h * k_w;
    const uint32x4_t lane = vidupq_n_u32(0, 1); /* 0, 1, 2, 3 */
    /* Output columns whose windows lie inside horizontally: ox * stride_w - pad_left >= 0 and
     * ox * stride_w - pad_left + k_w <= in_w. */
    int ox_lo = (pad_left + stride_w - 1) / stride_w;
    int ox_hi = in_w - k_w + pad_left >= 0 ? (in_w - k_w + pad_left) / stride_w + 1 : 0;
    struct ec_dw_geo d;
    struct ec_dw_group g;
    int c, t;
    d.in_h = in_h;
    d.in_w = in_w;
    d.k_h = k_h;
    d.k_w = k_w;
    d.stride_h = stride_h;
    d.stride_w = stride_w;
    d.pad_top = pad_top;
    d.pad_left = pad_left;
    d.pad_value = pad_value;
    d.out_h = out_h;
    d.out_w = out_w;
    d.act_min = act_min;
    d.act_max = act_max;
    d.offs_in = vmulq_n_u32(lane, (uint32_t)plane);
    d.offs_out = vmulq_n_u32(lane, (uint32_t)out_plane);
    d.offs_w = vmulq_n_u32(lane, (uint32_t)taps);
    ox_lo = ox_lo < out_w ? ox_lo : out_w;
    ox_hi = ox_hi < out_w ? ox_hi : out_w;
    for (c = 0; c < channels; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        g.in = input + c * plane;
        g.w = weight + (long)c * taps;
        g.out = output + c * out_plane;
        g.t.start = bias != 0 ? vldrwq_z_s32(bias + c, p) : vdupq_n_s32(0);
        g.t.neg_s = shift_per_channel ? vnegq_s32(vldrbq_z_s32(shift + c, p)) : vdupq_n_s32(-(int32_t)shift[0]);
        if (taps == 9) {
            for (t = 0; t < 9; ++t) {
                const int32x4_t w = vldrbq_gather_offset_z_s32(g.w + t, d.offs_w, p);
                vst1q_s32(g.t.wt + 4 * t, w);
                vst1q_s32(g.t_l.wt + 4 * t, t % 3 == 0 ? vdupq_n_s32(0) : w);
                vst1q_s32(g.t_r.wt + 4 * t, t % 3 == 2 ? vdupq_n_s32(0) : w);
            }
            g.t_l.start = g.t_r.start = g.t.start;
            g.t_l.neg_s = g.t_r.neg_s = g.t.neg_s;
            if (pad_value != 0) { /* |bias| + 128 * sum |w| <= acc_bound: no overflow (also below) */
                const int32_t *w = g.t.wt;
                const int32x4_t left = vaddq_s32(vaddq_s32(vld1q_s32(w), vld1q_s32(w + 12)), vld1q_s32(w + 24));
                const int32x4_t right = vaddq_s32(vaddq_s32(vld1q_s32(w + 8), vld1q_s32(w + 20)), vld1q_s32(w + 32));
                g.t_l.start = vaddq_s32(g.t.start, vmulq_n_s32(left, pad_value));
                g.t_r.start = vaddq_s32(g.t.start, vmulq_n_s32(right, pad_value));
            }
        }
        if (pad_value != 0) {
            int32x4_t sum = vdupq_n_s32(0);
            for (t = 0; t < taps; ++t) {
                sum = vaddq_s32(sum, vldrbq_gather_offset_z_s32(g.w + t, d.offs_w, p));
            }
            g.pad_sum = vmulq_n_s32(sum, pad_value);
        }
        /* pad_value 0 adds no padding products (nothing tested per window); pad_value != 0 runs
         * its own copies, whose clipped windows add them */
        if (pad_value == 0) {
            if (channels - c >= 4) {
                ec_dw_group_planes(&d, &g, ox_lo, ox_hi, p, 1, 0);
            } else {
                ec_dw_group_planes(&d, &g, ox_lo, ox_hi, p, 0, 0);
            }
        } else if (channels - c >= 4) {
            ec_dw_group_planes(&d, &g, ox_lo, ox_hi, p, 1, 1);
        } else {
            ec_dw_group_planes(&d, &g, ox_lo, ox_hi, p, 0, 1);
        }
    }
}
#endif
