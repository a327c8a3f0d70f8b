// conv_rows.cl: stride-1 convolutions on CPU devices without a column matrix. The input planes are
// first copied with their zero border into a padded scratch (pad_planes), so that every shifted row
// a kernel tap reads is one unaligned vector load with no bounds test; conv_rows then computes a
// TILE_M x TILE_N block of outputs per work-item (TILE_M output channels, TILE_N neighbouring
// columns of one output row), as gemm.cl does for a GEMM, reading B straight from the padded planes.
// This replaces im2col + gemm (forward) and gemm + col2im (input gradient): the column matrices
// (K = C*kh*kw times the image) were written and read back, ~30% of a PoCL training step.
//
//   pad_planes(x, padded, H, W, ph, pw, Hp, Wp, firstPlane, planes)   global (Hp, planes), ph, pw >= 0:
//       padded[p][r][s] = x[firstPlane + p][r - ph][s - pw], 0 outside the plane; one padded row per
//       work-item, its copied part in float16 loads and stores (one float per work-item, which PoCL
//       ran with its index arithmetic scalar, took ~6% of a UNet2DModel training step)
//   conv_rows(padded, w, bias, out, activated, M, C, kh, kw, Hp, Wp, oh, ow, sRow, sChannel, sKi, sKj,
//             wBase, hasBias, accumulate, silu, firstImage, span, images, channelsPerSlice, sliceStride)
//       global (tiles of the output plane, ceil(M/TILE_M), images * slices):
//       out[firstImage + g][i][y][x] (+)= bias[i] + sum over c < C, ki < kh, kj < kw of
//           w[wBase + i*sRow + c*sChannel + ki*sKi + kj*sKj] * padded[g*C + c][y + ki][x + kj]
//       and with `silu` (one slice) activated[same index] = silu(out): BasicUNet's conv-then-SiLU in
//       the store, as activation.cl's silu_rows computes it
// Forward: M = Cout, C = Cin, strides (Cin*kh*kw, kh*kw, kw, 1), wBase 0, x padded by (ph, pw).
// Input gradient (a stride-1 transposed convolution is a convolution with the kernel flipped and
// the channels swapped): M = Cin, C = Cout, strides (kh*kw, Cin*kh*kw, -kw, -1), wBase kh*kw - 1,
// dY padded by (kh - 1 - ph, kw - 1 - pw).
// Wp is ceil(ow/span)*span + kw - 1, so a tile's loads stay inside its row even past ow, and Hp
// covers the tiles' last rows.
// TILE_M, TILE_N, VEC, VLOAD, VSTORE (floatTILE_N and its loads) and FOR_ROWS (X(0) .. X(TILE_M - 1))
// come from gemm.cl, which precedes this file in the program.


__kernel void pad_planes(__global const float* x, __global float* padded, const int H, const int W, const int ph,
                         const int pw, const int Hp, const int Wp, const int firstPlane, const int planes) {
    const int r = (int)get_global_id(0);
    const size_t p = get_global_id(1);
    if (r >= Hp || p >= (size_t)planes) return;
    __global float* out = padded + (p * (size_t)Hp + (size_t)r) * (size_t)Wp;
    const int iy = r - ph;
    // The part of the row copied from x: columns pw ..< pw + n.
    const int n = (iy >= 0 && iy < H) ? clamp(Wp - pw, 0, W) : 0;
    for (int s = 0; s < min(pw, Wp); ++s) out[s] = 0.0f;
    if (n > 0) {
        __global const float* src = x + (((size_t)firstPlane + p) * (size_t)H + (size_t)iy) * (size_t)W;
        __global float* dst = out + pw;
        int j = 0;
        for (; j + 16 <= n; j += 16) vstore16(vload16(0, src + j), 0, dst + j);
        for (; j < n; ++j) dst[j] = src[j];
    }
    for (int s = max(pw + n, 0); s < Wp; ++s) out[s] = 0.0f;
}

// Rows past M read row M - 1 (valid memory) and are never stored.
#define CR_DECLARE(r) VEC acc##r = (VEC)(0.0f); VEC part##r; \
    const int wRow##r = wBase + min(i0 + r, M - 1) * sRow;
#define CR_CLEAR(r) part##r = (VEC)(0.0f);
#define CR_FMA(r) part##r = fma((VEC)(w[wRow##r + tap]), bv, part##r);
#define CR_ADD(r) acc##r += part##r;
#define CR_STORE(r) if (i0 + r < M) conv_rows_store(out, activated, silu, \
    ((size_t)(firstImage + g) * (size_t)M + (size_t)(i0 + r)) * (size_t)(oh * ow) + (size_t)(y * ow), \
    y, x0, oh, ow, span, acc##r + (VEC)(hasBias ? bias[i0 + r] : 0.0f), accumulate);

// Lane e of a tile is output (y + e / span, x0 + e % span) of the plane; `line` is the offset of
// row y in `out` (and `activated`, which takes silu of each stored value when `silu` is set).
inline void conv_rows_store(__global float* out, __global float* activated, const int silu, const size_t line,
                            const int y, const int x0, const int oh, const int ow, const int span, VEC value,
                            const int accumulate) {
    if (span == TILE_N && x0 + TILE_N <= ow) {
        if (accumulate) value += VLOAD(0, out + line + x0);
        VSTORE(value, 0, out + line + x0);
        if (silu) VSTORE(value / (1.0f + exp(-value)), 0, activated + line + x0);
        return;
    }
    // The activation as a vector here too (a scalar exp per float is ~3 ns on PoCL); the host never
    // sets `silu` with `accumulate`, so it is silu of `value`.
    float t[TILE_N], a[TILE_N];
    VSTORE(value, 0, t);
    if (silu) VSTORE(value / (1.0f + exp(-value)), 0, a);
    for (int e = 0; e < TILE_N; ++e) {
        const int row = e / span, column = x0 + e % span;
        if (y + row >= oh || column >= ow) continue;
        const size_t at = line + (size_t)(row * ow + column);
        out[at] = accumulate ? out[at] + t[e] : t[e];
        if (silu) activated[at] = a[e];
    }
}

// TILE_N neighbouring floats of a padded row, or, for a plane 8 or fewer columns wide (span 8 of a
// 16-lane tile), 8 of this row and 8 of the next: a 7x7 plane would otherwise leave 9 of 16 lanes idle.
inline VEC conv_rows_load(__global const float* at, const int Wp, const int span) {
#if TILE_N == 16
    if (span == 8) return (float16)(vload8(0, at), vload8(0, at + Wp));
#endif
    return VLOAD(0, at);
}

// span: output columns per tile row (TILE_N, or 8 for narrow planes when TILE_N is 16); the tile
// covers TILE_N / span output rows. Global dimension 2 runs over images * slices: slice s sums
// input channels [s * channelsPerSlice, ...) into out + s * sliceStride (partials the host adds up
// when one launch would be narrow and long).
__kernel void conv_rows(__global const float* padded, __global const float* w, __global const float* bias,
                        __global float* out, __global float* activated, const int M, const int C, const int kh,
                        const int kw, const int Hp, const int Wp, const int oh, const int ow, const int sRow,
                        const int sChannel, const int sKi, const int sKj, const int wBase, const int hasBias,
                        const int accumulate, const int silu, const int firstImage, const int span,
                        const int images, const int channelsPerSlice, const int sliceStride) {
    const int tilesX = (ow + span - 1) / span;
    const int rowsPerTile = TILE_N / span;
    const int tilesY = (oh + rowsPerTile - 1) / rowsPerTile;
    const int t = (int)get_global_id(0);
    const int i0 = (int)get_global_id(1) * TILE_M;
    const int z = (int)get_global_id(2);
    if (t >= tilesX * tilesY || i0 >= M) return;
    const int g = z % images;
    const int slice = z / images;
    out += (size_t)slice * (size_t)sliceStride;
    const int y = (t / tilesX) * rowsPerTile;
    const int x0 = (t % tilesX) * span;
    const size_t planeSize = (size_t)Hp * (size_t)Wp;
    __global const float* origin = padded + (size_t)g * (size_t)C * planeSize + (size_t)(y * Wp + x0);
    // Terms summed in a partial before it is added to the total: gemm.cl's K-block, rounded to
    // whole input channels.
    const int channelsPerBlock = max(1, GEMM_K_BLOCK / (kh * kw));
    const int cFirst = slice * channelsPerSlice;
    const int cLast = min(C, cFirst + channelsPerSlice);
    FOR_ROWS(CR_DECLARE)
    for (int c0 = cFirst; c0 < cLast; c0 += channelsPerBlock) {
        FOR_ROWS(CR_CLEAR)
        const int cEnd = min(cLast, c0 + channelsPerBlock);
        for (int c = c0; c < cEnd; ++c) {
            __global const float* plane = origin + (size_t)c * planeSize;
            for (int ki = 0; ki < kh; ++ki) {
                __global const float* line = plane + ki * Wp;
                const int tapRow = c * sChannel + ki * sKi;
                for (int kj = 0; kj < kw; ++kj) {
                    const VEC bv = conv_rows_load(line + kj, Wp, span);
                    const int tap = tapRow + kj * sKj;
                    FOR_ROWS(CR_FMA)
                }
            }
        }
        FOR_ROWS(CR_ADD)
    }
    FOR_ROWS(CR_STORE)
}

// The weight gradient of a conv_rows convolution, per slice of imagesPerItem images z*imagesPerItem.. (no
// column matrix either; small planes take several images, so that the final sums across lanes
// do not outweigh the loop):
//   partials[z][co][(c*kh + ki)*kw + kj] = sum over g, y, x of dY[g][co][y][x] * padded[g][c][y + ki][x + kj]
//   partials[z][co][C*kh*kw] = sum over g, y, x of dY[g][co][y][x]          (hasBias: the bias gradient)
// with dY zero-padded to whole tiles (Hd x Wd, by pad_planes), so lanes past the plane add nothing.
// A work-item takes CW_ROWS output channels and one kernel row (c, ki) of one image: CW_ROWS * kw
// vector accumulators (kw <= CW_TAPS), each a sum over the image's tiles, added across lanes at the
// end. The host adds the images up (sum_batch_split, or sum_batch without a bias).
// Global: (ceil(Cout / CW_ROWS), C * kh, ceil(images / imagesPerItem)).
#define CW_ROWS 4
#define CW_TAPS 5
#define CW_FOR_ROWS(X, j) X(0, j) X(1, j) X(2, j) X(3, j)
#define CW_FOR_TAPS(X) X(0) X(1) X(2) X(3) X(4)
#define CW_DECLARE_ROW(r, j) VEC a##r##_##j = (VEC)(0.0f);
#define CW_DECLARE(j) CW_FOR_ROWS(CW_DECLARE_ROW, j)
#define CW_FMA_ROW(r, j) a##r##_##j = fma(d##r, xj, a##r##_##j);
#define CW_TAP(j) if (j < kw) { const VEC xj = conv_rows_load(xs + j, Wp, span); CW_FOR_ROWS(CW_FMA_ROW, j) }
#define CW_LOAD_DY(r, unused) const VEC d##r = conv_rows_load(dyRow##r + at, Wd, span);
#define CW_DY_ROW(r, unused) __global const float* dyRow##r = \
    dypad + ((size_t)g * (size_t)Cout + (size_t)min(co0 + r, Cout - 1)) * (size_t)(Hd * Wd);
#define CW_BIAS_ROW(r, unused) s##r += d##r;
#define CW_BIAS_DECLARE(r, unused) VEC s##r = (VEC)(0.0f);
#define CW_STORE_ROW(r, j) if (j < kw && co0 + r < Cout) out[(size_t)(co0 + r) * (size_t)columns + (size_t)(first + j)] = \
    vec_sum(a##r##_##j);
#define CW_STORE(j) CW_FOR_ROWS(CW_STORE_ROW, j)
#define CW_BIAS_STORE(r, unused) if (co0 + r < Cout) out[(size_t)(co0 + r) * (size_t)columns + (size_t)K] = \
    vec_sum(s##r);

// The work of one item; called with kw a literal where it is 3 or 5, so that the taps' tests fold
// away and the accumulators stay in registers.
inline void conv_rows_weight_item(__global const float* padded, __global const float* dypad,
                                  __global float* partials, const int Cout, const int C, const int kh, const int kw,
                                  const int Hp, const int Wp, const int Hd, const int Wd, const int oh, const int ow,
                                  const int span, const int hasBias, const int co0, const int cki, const int z,
                                  const int imagesPerItem, const int images) {
    const int c = cki / kh;
    const int ki = cki % kh;
    const int rowsPerTile = TILE_N / span;
    const int tilesX = (ow + span - 1) / span;
    const int tilesY = (oh + rowsPerTile - 1) / rowsPerTile;
    const int withBias = hasBias && cki == 0;
    CW_FOR_TAPS(CW_DECLARE)
    CW_FOR_ROWS(CW_BIAS_DECLARE, 0)
    const int gEnd = min(images, (z + 1) * imagesPerItem);
    for (int g = z * imagesPerItem; g < gEnd; ++g) {
        __global const float* plane =
            padded + (((size_t)g * (size_t)C + (size_t)c) * (size_t)Hp + (size_t)ki) * (size_t)Wp;
        CW_FOR_ROWS(CW_DY_ROW, 0)
        for (int ty = 0; ty < tilesY; ++ty) {
            const int y = ty * rowsPerTile;
            for (int tx = 0; tx < tilesX; ++tx) {
                const int x0 = tx * span;
                const int at = y * Wd + x0;
                CW_FOR_ROWS(CW_LOAD_DY, 0)
                __global const float* xs = plane + y * Wp + x0;
                CW_FOR_TAPS(CW_TAP)
                if (withBias) { CW_FOR_ROWS(CW_BIAS_ROW, 0) }
            }
        }
    }
    const int K = C * kh * kw;
    const int columns = K + (hasBias ? 1 : 0);
    const int first = cki * kw;
    __global float* out = partials + (size_t)z * (size_t)Cout * (size_t)columns;
    CW_FOR_TAPS(CW_STORE)
    if (withBias) { CW_FOR_ROWS(CW_BIAS_STORE, 0) }
}

__kernel void conv_rows_weight(__global const float* padded, __global const float* dypad, __global float* partials,
                               const int Cout, const int C, const int kh, const int kw, const int Hp, const int Wp,
                               const int Hd, const int Wd, const int oh, const int ow, const int span,
                               const int hasBias, const int images, const int imagesPerItem) {
    const int co0 = (int)get_global_id(0) * CW_ROWS;
    const int cki = (int)get_global_id(1);
    const int z = (int)get_global_id(2);
    if (co0 >= Cout || cki >= C * kh || z * imagesPerItem >= images) return;
    if (kw == 3) {
        conv_rows_weight_item(padded, dypad, partials, Cout, C, kh, 3, Hp, Wp, Hd, Wd, oh, ow, span, hasBias, co0, cki, z,
                              imagesPerItem, images);
    } else if (kw == 5) {
        conv_rows_weight_item(padded, dypad, partials, Cout, C, kh, 5, Hp, Wp, Hd, Wd, oh, ow, span, hasBias, co0, cki, z,
                              imagesPerItem, images);
    } else {
        conv_rows_weight_item(padded, dypad, partials, Cout, C, kh, kw, Hp, Wp, Hd, Wd, oh, ow, span, hasBias, co0, cki, z,
                              imagesPerItem, images);
    }
}
