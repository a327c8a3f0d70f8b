// random.cl: Philox4x32-10 (Salmon et al. SC'11), the same stream as the CPU backend's Philox.swift:
// key = seed, counter = (offset + block, 0, 0); value i is lane (shift + i) % 4 of block (shift + i) / 4
// (RandomKey: a nonzero shift starts a draw inside a block, a slice of a larger draw).
//   philox_uniform(out, n, seedLo, seedHi, offsetLo, offsetHi, shift, low, high)   one work-item per block
//   philox_normal(out, n, seedLo, seedHi, offsetLo, offsetHi, shift, mean, std)    Box-Muller on lane pairs
//   philox_dropout_mask(out, n, seedLo, seedHi, offsetLo, offsetHi, shift, p)     1/(1-p) where uniform >= p, else 0

inline uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k.x += 0x9E3779B9u; k.y += 0xBB67AE85u; }
        const uint lo0 = 0xD2511F53u * c.x;
        const uint hi0 = mul_hi(0xD2511F53u, c.x);
        const uint lo1 = 0xCD9E8D57u * c.z;
        const uint hi1 = mul_hi(0xCD9E8D57u, c.z);
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

inline uint4 philox_block(const uint seedLo, const uint seedHi, const uint offsetLo, const uint offsetHi, const size_t block) {
    const ulong position = (((ulong)offsetHi << 32) | (ulong)offsetLo) + (ulong)block;
    return philox4x32_10((uint4)((uint)position, (uint)(position >> 32), 0u, 0u), (uint2)(seedLo, seedHi));
}

inline float unit_float(const uint bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }

inline float2 box_muller(const uint a, const uint b) {
    const float u1 = ((float)(a >> 8) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = unit_float(b);
    const float radius = sqrt(-2.0f * log(u1));
    const float angle = 2.0f * M_PI_F * u2;
    return (float2)(radius * cos(angle), radius * sin(angle));
}

// Writes lane l's value to out[4 * block + l - shift] when that index is in [0, n).
#define PHILOX_STORE(lane, value) { const long i = base + (lane); if (i >= 0 && i < (long)n) out[i] = (value); }

__kernel void philox_uniform(__global float* out, const int n, const uint seedLo, const uint seedHi,
                             const uint offsetLo, const uint offsetHi, const int shift, const float low, const float high) {
    const size_t block = get_global_id(0);
    const long base = (long)block * 4 - shift;
    if (base >= (long)n) return;
    const uint4 r = philox_block(seedLo, seedHi, offsetLo, offsetHi, block);
    const float span = high - low;
    PHILOX_STORE(0, low + span * unit_float(r.x));
    PHILOX_STORE(1, low + span * unit_float(r.y));
    PHILOX_STORE(2, low + span * unit_float(r.z));
    PHILOX_STORE(3, low + span * unit_float(r.w));
}

__kernel void philox_normal(__global float* out, const int n, const uint seedLo, const uint seedHi,
                            const uint offsetLo, const uint offsetHi, const int shift, const float mean, const float std) {
    const size_t block = get_global_id(0);
    const long base = (long)block * 4 - shift;
    if (base >= (long)n) return;
    const uint4 r = philox_block(seedLo, seedHi, offsetLo, offsetHi, block);
    const float2 first = box_muller(r.x, r.y);
    const float2 second = box_muller(r.z, r.w);
    PHILOX_STORE(0, mean + std * first.x);
    PHILOX_STORE(1, mean + std * first.y);
    PHILOX_STORE(2, mean + std * second.x);
    PHILOX_STORE(3, mean + std * second.y);
}

__kernel void philox_dropout_mask(__global float* out, const int n, const uint seedLo, const uint seedHi,
                                  const uint offsetLo, const uint offsetHi, const int shift, const float p) {
    const size_t block = get_global_id(0);
    const long base = (long)block * 4 - shift;
    if (base >= (long)n) return;
    const uint4 r = philox_block(seedLo, seedHi, offsetLo, offsetHi, block);
    const float keep = 1.0f / (1.0f - p);
    PHILOX_STORE(0, unit_float(r.x) >= p ? keep : 0.0f);
    PHILOX_STORE(1, unit_float(r.y) >= p ? keep : 0.0f);
    PHILOX_STORE(2, unit_float(r.z) >= p ? keep : 0.0f);
    PHILOX_STORE(3, unit_float(r.w) >= p ? keep : 0.0f);
}
