#include "agentbox_desktop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

static int read_exactly(int fd, uint8_t *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t got = recv(fd, buffer + done, length - done, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -1;
        if (got == 0) {
            errno = ECONNRESET;
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

int ab_x11_read_image(int fd, uint8_t *pixels, int width, int height, int *x_error) {
    if (width <= 0 || height <= 0 || width > AB_DESKTOP_MAX_SIDE || height > AB_DESKTOP_MAX_SIDE) return -3;
    uint8_t header[32];
    // Events that arrive first (the connection selects none, but a server may send some) are skipped.
    for (int skipped = 0;; skipped++) {
        if (read_exactly(fd, header, sizeof header) != 0) return -1;
        if (header[0] == 1) break;
        if (header[0] == 0) {
            *x_error = header[1];
            return -2;
        }
        if (skipped > 1024) return -3;
    }
    uint32_t words = (uint32_t)header[4] | ((uint32_t)header[5] << 8) | ((uint32_t)header[6] << 16) | ((uint32_t)header[7] << 24);
    size_t expected = (size_t)width * (size_t)height * 4;
    if ((size_t)words * 4 != expected) return -3;
    return read_exactly(fd, pixels, expected) == 0 ? 0 : -1;
}

struct growing {
    uint8_t *bytes;
    size_t length, capacity;
};

static int put(struct growing *out, const void *bytes, size_t length) {
    if (out->length + length > out->capacity) {
        size_t capacity = out->capacity * 2 + length;
        uint8_t *grown = realloc(out->bytes, capacity);
        if (!grown) return -1;
        out->bytes = grown;
        out->capacity = capacity;
    }
    memcpy(out->bytes + out->length, bytes, length);
    out->length += length;
    return 0;
}

static void be32(uint8_t *at, uint32_t value) {
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

/// Appends a chunk whose data is already in `out` after an 8-byte gap left for its length and type.
static int close_chunk(struct growing *out, size_t start, const char type[4]) {
    size_t length = out->length - start - 8;
    be32(out->bytes + start, (uint32_t)length);
    memcpy(out->bytes + start + 4, type, 4);
    uint8_t crc[4];
    be32(crc, (uint32_t)crc32(crc32(0, Z_NULL, 0), out->bytes + start + 4, (uInt)(length + 4)));
    return put(out, crc, 4);
}

/// One output row as RGB with the Sub filter's byte in front: `row` holds 1 + 3 * out_width bytes.
static void make_row(
    const uint8_t *pixels, int width, int height, size_t stride, int out_width, int out_height, int y, uint8_t *row,
    uint32_t *sums) {
    if (out_width == width && out_height == height) {
        const uint8_t *source = pixels + (size_t)y * stride;
        uint8_t *rgb = row + 1;
        for (int x = 0; x < width; x++) {
            rgb[3 * x] = source[4 * x + 2];
            rgb[3 * x + 1] = source[4 * x + 1];
            rgb[3 * x + 2] = source[4 * x];
        }
    } else {
        // Area average over the source rows and columns that map to this output pixel (at least one each).
        int y0 = (int)((int64_t)y * height / out_height), y1 = (int)((int64_t)(y + 1) * height / out_height);
        if (y1 <= y0) y1 = y0 + 1;
        memset(sums, 0, sizeof(uint32_t) * 4 * (size_t)out_width);
        for (int x = 0; x < out_width; x++) {
            int x0 = (int)((int64_t)x * width / out_width), x1 = (int)((int64_t)(x + 1) * width / out_width);
            if (x1 <= x0) x1 = x0 + 1;
            uint32_t *sum = sums + 4 * x;
            for (int sy = y0; sy < y1; sy++) {
                const uint8_t *source = pixels + (size_t)sy * stride;
                for (int sx = x0; sx < x1; sx++) {
                    sum[0] += source[4 * sx + 2];
                    sum[1] += source[4 * sx + 1];
                    sum[2] += source[4 * sx];
                }
            }
            sum[3] = (uint32_t)((y1 - y0) * (x1 - x0));
            row[1 + 3 * x] = (uint8_t)(sum[0] / sum[3]);
            row[2 + 3 * x] = (uint8_t)(sum[1] / sum[3]);
            row[3 + 3 * x] = (uint8_t)(sum[2] / sum[3]);
        }
    }
    // Sub filter, from the right so that each byte still sees its unfiltered left neighbour.
    row[0] = 1;
    for (int i = 3 * out_width; i > 3; i--) row[i] = (uint8_t)(row[i] - row[i - 3]);
}

int ab_png_encode_bgrx(
    const uint8_t *pixels, int width, int height, size_t stride, int out_width, int out_height, uint8_t **png,
    size_t *png_length) {
    if (width <= 0 || height <= 0 || out_width <= 0 || out_height <= 0 || width > AB_DESKTOP_MAX_SIDE ||
        height > AB_DESKTOP_MAX_SIDE || out_width > AB_DESKTOP_MAX_SIDE || out_height > AB_DESKTOP_MAX_SIDE ||
        stride < (size_t)width * 4)
        return -1;
    struct growing out = {0};
    size_t row_length = 1 + 3 * (size_t)out_width;
    uint8_t *row = malloc(row_length);
    uint32_t *sums = malloc(sizeof(uint32_t) * 4 * (size_t)out_width);
    z_stream z = {0};
    int ok = row && sums && deflateInit2(&z, 1, Z_DEFLATED, 15, 9, Z_RLE) == Z_OK;
    if (ok) ok = put(&out, "\x89PNG\r\n\x1a\n", 8) == 0;
    if (ok) {
        uint8_t header[8 + 13] = {0};
        be32(header + 8, (uint32_t)out_width);
        be32(header + 12, (uint32_t)out_height);
        header[16] = 8;  // bits per sample
        header[17] = 2;  // RGB
        size_t start = out.length;
        ok = put(&out, header, sizeof header) == 0 && close_chunk(&out, start, "IHDR") == 0;
    }
    size_t idat = out.length;
    if (ok) ok = put(&out, "\0\0\0\0IDAT", 8) == 0;
    for (int y = 0; ok && y < out_height; y++) {
        make_row(pixels, width, height, stride, out_width, out_height, y, row, sums);
        z.next_in = row;
        z.avail_in = (uInt)row_length;
        int flush = y == out_height - 1 ? Z_FINISH : Z_NO_FLUSH;
        do {
            size_t room = 65536;
            if (out.length + room > out.capacity) {
                size_t capacity = out.capacity * 2 + room;
                uint8_t *grown = realloc(out.bytes, capacity);
                if (!grown) {
                    ok = 0;
                    break;
                }
                out.bytes = grown;
                out.capacity = capacity;
            }
            z.next_out = out.bytes + out.length;
            z.avail_out = (uInt)(out.capacity - out.length);
            int status = deflate(&z, flush);
            out.length = out.capacity - z.avail_out;
            if (status == Z_STREAM_ERROR) ok = 0;
            if (status == Z_STREAM_END) break;
        } while (ok && (z.avail_out == 0 || (flush == Z_FINISH)));
    }
    if (ok) ok = close_chunk(&out, idat, "IDAT") == 0;
    if (ok) {
        size_t start = out.length;
        ok = put(&out, "\0\0\0\0IEND", 8) == 0 && close_chunk(&out, start, "IEND") == 0;
    }
    deflateEnd(&z);
    free(row);
    free(sums);
    if (!ok) {
        free(out.bytes);
        return -1;
    }
    *png = out.bytes;
    *png_length = out.length;
    return 0;
}
