// libjpeg(-turbo) decoding behind plain functions: libjpeg reports errors by longjmp, which Swift
// cannot catch, so the setjmp lives here and every failure comes back as a return code and text.
#ifndef DIFFUSE_JPEG_DECODE_H
#define DIFFUSE_JPEG_DECODE_H
#include <stddef.h>

typedef struct {
    int width;
    int height;
    /// 1 (greyscale) or 3 (RGB, converted from YCbCr as libjpeg does by default).
    int channels;
} diffuse_jpeg_info;

/// Reads the header only: the size and channels a decode would produce. 0 on success.
int diffuse_jpeg_header(const unsigned char *data, size_t size, diffuse_jpeg_info *info, char *message,
                        size_t message_size);

/// Decodes into `out` (width * height * channels bytes, rows top to bottom, channels interleaved).
/// A truncated file is an error (as PIL refuses one), not grey padding. 0 on success.
int diffuse_jpeg_decode(const unsigned char *data, size_t size, unsigned char *out, size_t out_size,
                        diffuse_jpeg_info *info, char *message, size_t message_size);

#endif
