/*
 * ec_depthwise_mve.c - depthwise convolution with Helium (MVE), CHW (see ec_depthwise_mve.h).
 *
 * Channels go four to a vector: lane i holds channel c + i, so one tap of one output pixel is
 * a gather of the four channels' input values (one plane apart), a gather of their four
 * weights, a multiply and an add, and padding is the same for all lanes: a tap outside the
 * input is skipped for the whole vector, as the reference skips it.  A window that lies
 * inside the input takes all its taps without a test (3x3 fully unrolled).  The last group
 * of channels is predicated (inactive lanes load nothing and store nothing).
 *
 * Exactness: each lane's accumulator is the reference's bias plus the same products
 * w * x (|w * x| <= 2^14, exact in int32), added in the same order; |acc| <= acc_bound <=
 * 2^31 - 1 holds for every partial sum.  Requantization is VQRSHL by -s: for s > 0 it
 * computes (acc + 2^(s-1)) >> s without overflow (rounding right shift), which is rule 2's
 * floor(acc / 2^s + 1/2), round half up, negative values and ties included; s = 0 leaves
 * acc; for s < 0 it is acc * 2^-s saturated to int32, and clamping that to [act_min, act_max]
 * (within int32) gives the same as rule 2's clamp-then-shift followed by rule 3.  Then
 * VMAX/VMIN apply rule 3.
 */
#include "ec_depthwise_mve.h"

#include "ec_conv2d_grouped.h"

#if EC_FAST_MVE

/* acc + the tap at input offset xo (from the lanes' channel bases at in, planes offs_in
 * apart) times the tap's weights at w (offs_w apart). */
static EC_FAST_INLINE int32x4_t ec_dw_tap(int32x4_t acc, const int8_t *in, uint32x4_t offs_in, const int8_t *w,
                                          uint32x4_t offs_w, mve_pred16_t p)
{
    const int32x4_t x = vldrbq_gather_offset_z_s32(in, offs_in, p);
    const int32x4_t k = vldrbq_gather_offset_z_s32(w, offs_w, p);
    return vaddq_s32(acc, vmulq_s32(x, k));
}

void ec_depthwise_mve_s8(const int8_t *input, int channels, int in_h, int in_w, const int8_t *weight,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int k_h, int k_w,
                         int stride_h, int stride_w, int pad_top, int pad_left, int8_t *output, int out_h, int out_w,
                         int32_t act_min, int32_t act_max)
{
    const long plane = (long)in_h * in_w, out_plane = (long)out_h * out_w;
    const int taps = k_h * k_w;
    const uint32x4_t lane = vidupq_n_u32(0, 1); /* 0, 1, 2, 3 */
    const uint32x4_t offs_in = vmulq_n_u32(lane, (uint32_t)plane);
    const uint32x4_t offs_out = vmulq_n_u32(lane, (uint32_t)out_plane);
    const uint32x4_t offs_w = vmulq_n_u32(lane, (uint32_t)taps);
    const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
    int c;
    for (c = 0; c < channels; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        const int8_t *in_c = input + c * plane, *w_c = weight + (long)c * taps;
        int8_t *out = output + c * out_plane;
        const int32x4_t b = bias != 0 ? vldrwq_z_s32(bias + c, p) : vdupq_n_s32(0);
        /* -s per lane: a right shift by s in VQRSHL */
        const int32x4_t neg_s = shift_per_channel ? vnegq_s32(vldrbq_z_s32(shift + c, p))
                                                  : vdupq_n_s32(-(int32_t)shift[0]);
        int oy, ox;
        for (oy = 0; oy < out_h; ++oy) {
            const int y0 = oy * stride_h - pad_top;
            const int ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + k_h > in_h ? in_h - y0 : k_h;
            for (ox = 0; ox < out_w; ++ox, ++out) {
                const int x0 = ox * stride_w - pad_left;
                const int kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + k_w > in_w ? in_w - x0 : k_w;
                int32x4_t acc = b;
                if (k_h == 3 && k_w == 3 && ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                    const int8_t *r0 = in_c + (long)y0 * in_w + x0, *r1 = r0 + in_w, *r2 = r1 + in_w;
                    acc = ec_dw_tap(acc, r0, offs_in, w_c, offs_w, p);
                    acc = ec_dw_tap(acc, r0 + 1, offs_in, w_c + 1, offs_w, p);
                    acc = ec_dw_tap(acc, r0 + 2, offs_in, w_c + 2, offs_w, p);
                    acc = ec_dw_tap(acc, r1, offs_in, w_c + 3, offs_w, p);
                    acc = ec_dw_tap(acc, r1 + 1, offs_in, w_c + 4, offs_w, p);
                    acc = ec_dw_tap(acc, r1 + 2, offs_in, w_c + 5, offs_w, p);
                    acc = ec_dw_tap(acc, r2, offs_in, w_c + 6, offs_w, p);
                    acc = ec_dw_tap(acc, r2 + 1, offs_in, w_c + 7, offs_w, p);
                    acc = ec_dw_tap(acc, r2 + 2, offs_in, w_c + 8, offs_w, p);
                } else {
                    int ky, kx;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *row = in_c + (long)(y0 + ky) * in_w + x0, *wr = w_c + ky * k_w;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc = ec_dw_tap(acc, row + kx, offs_in, wr + kx, offs_w, p);
                        }
                    }
                }
                acc = vminq_s32(vmaxq_s32(vqrshlq_s32(acc, neg_s), lo), hi);
                vstrbq_scatter_offset_p_s32(out, offs_out, acc, p);
            }
        }
    }
}
#endif

void ec_conv2d_grouped_mve_s8(const int8_t *input, int in_c, int in_h, int in_w,
                              const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                              int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                              int dilation_h, int dilation_w, int groups,
                              int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max)
{
#if EC_FAST_MVE
    if (groups == in_c && out_c == in_c && dilation_h == 1 && dilation_w == 1) {
        ec_depthwise_mve_s8(input, in_c, in_h, in_w, weight, bias, shift, shift_per_channel, k_h, k_w, stride_h,
                            stride_w, pad_top, pad_left, output, out_h, out_w, act_min, act_max);
        return;
    }
#endif
    ec_conv2d_grouped_s8(input, in_c, in_h, in_w, weight, bias, shift, shift_per_channel, out_c, k_h, k_w, stride_h,
                         stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, output, out_h, out_w, act_min,
                         act_max);
}
