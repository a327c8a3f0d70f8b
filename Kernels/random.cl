// random.cl: Philox4x32-10 (Salmon et al. SC'11), the same stream as the CPU backend's Philox.swift:
// key = seed, counter = (offset + block, 0, 0); block b gives elements 4b..4b+3.
//   philox_uniform(out, n, seedLo, seedHi, offsetLo, offsetHi, low, high)       one work-item per block
//   philox_normal(out, n, seedLo, seedHi, offsetLo, offsetHi, mean, std)        Box-Muller on lane pairs
//   philox_dropout_mask(out, n, seedLo, seedHi, offsetLo, offsetHi, p)         1/(1-p) where uniform >= p, else 0

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

__kernel void philox_uniform(__global float* out, const int n, const uint seedLo, const uint seedHi,
                             const uint offsetLo, const uint offsetHi, const float low, const float high) {
    const size_t block = get_global_id(0);
    const size_t base = block * 4;
    if (base >= (size_t)n) return;
    const uint4 r = philox_block(seedLo, seedHi, offsetLo, offsetHi, block);
    const float span = high - low;
    out[base] = low + span * unit_float(r.x);
    if (base + 1 < (size_t)n) out[base + 1] = low + span * unit_float(r.y);
    if (base + 2 < (size_t)n) out[base + 2] = low + span * unit_float(r.z);
    if (base + 3 < (size_t)n) out[base + 3] = low + span * unit_float(r.w);
}

__kernel void philox_normal(__global float* out, const int n, const uint seedLo, const uint seedHi,
                            const uint offsetLo, const uint offsetHi, const float mean, const float std) {
    const size_t block = get_global_id(0);
    const size_t base = block * 4;
    if (base >= (size_t)n) return;
    const uint4 r = philox_block(seedLo, seedHi, offsetLo, offsetHi, block);
    const float2 first = box_muller(r.x, r.y);
    const float2 second = box_muller(r.z, r.w);
    out[base] = mean + std * first.x;
    if (base + 1 < (size_t)n) out[base + 1] = mean + std * first.y;
    if (base + 2 < (size_t)n) out[base + 2] = mean + std * second.x;
    if (base + 3 < (size_t)n) out[base + 3] = mean + std * second.y;
}

__kernel void philox_dropout_mask(__global float* out, const int n, const uint seedLo, const uint seedHi,
                                  const uint offsetLo, const uint offsetHi, const float p) {
    const size_t block = get_global_id(0);
    const size_t base = block * 4;
    if (base >= (size_t)n) return;
    const uint4 r = philox_block(seedLo, seedHi, offsetLo, offsetHi, block);
    const float keep = 1.0f / (1.0f - p);
    out[base] = unit_float(r.x) >= p ? keep : 0.0f;
    if (base + 1 < (size_t)n) out[base + 1] = unit_float(r.y) >= p ? keep : 0.0f;
    if (base + 2 < (size_t)n) out[base + 2] = unit_float(r.z) >= p ? keep : 0.0f;
    if (base + 3 < (size_t)n) out[base + 3] = unit_float(r.w) >= p ? keep : 0.0f;
}
