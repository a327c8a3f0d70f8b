// See jpeg_decode.h. Decoding settings are libjpeg's defaults (islow DCT, fancy upsampling), the
// ones Pillow decodes with, so the pixels equal PIL's for the same library.
#include "jpeg_decode.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf escape;
    char *message;
    size_t message_size;
} failure;

static void fail(j_common_ptr cinfo) {
    failure *f = (failure *)cinfo->err;
    if (f->message && f->message_size) {
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        snprintf(f->message, f->message_size, "%s", text);
    }
    longjmp(f->escape, 1);
}

// Warnings are silent, except running out of data: libjpeg would pad the image with grey.
static void warn(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) fail(cinfo);
}

static void quiet(j_common_ptr cinfo) { (void)cinfo; }

static void start(struct jpeg_decompress_struct *cinfo, const unsigned char *data, size_t size,
                  diffuse_jpeg_info *info) {
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
        ERREXIT(cinfo, JERR_CONVERSION_NOTIMPL);
    }
    cinfo->out_color_space = cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    info->width = (int)cinfo->image_width;
    info->height = (int)cinfo->image_height;
    info->channels = cinfo->num_components == 1 ? 1 : 3;
}

// Routes libjpeg's errors and warnings to `f` (the setjmp stays in the caller, whose frame lives on).
static void prepare(struct jpeg_decompress_struct *cinfo, failure *f, char *message, size_t message_size) {
    memset(f, 0, sizeof *f);
    cinfo->err = jpeg_std_error(&f->manager);
    f->manager.error_exit = fail;
    f->manager.emit_message = warn;
    f->manager.output_message = quiet;
    f->message = message;
    f->message_size = message_size;
}

int diffuse_jpeg_header(const unsigned char *data, size_t size, diffuse_jpeg_info *info, char *message,
                        size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    failure f;
    prepare(&cinfo, &f, message, message_size);
    if (setjmp(f.escape)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    start(&cinfo, data, size, info);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int diffuse_jpeg_decode(const unsigned char *data, size_t size, unsigned char *out, size_t out_size,
                        diffuse_jpeg_info *info, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    failure f;
    prepare(&cinfo, &f, message, message_size);
    if (setjmp(f.escape)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    start(&cinfo, data, size, info);
    size_t row = (size_t)info->width * (size_t)info->channels;
    if (row == 0 || out_size != row * (size_t)info->height) {
        snprintf(message, message_size, "output buffer of %zu bytes for %dx%dx%d pixels", out_size, info->width,
                 info->height, info->channels);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {out + (size_t)cinfo.output_scanline * row};
        jpeg_read_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}
