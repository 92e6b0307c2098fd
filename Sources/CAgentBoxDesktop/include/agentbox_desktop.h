#ifndef AGENTBOX_DESKTOP_H
#define AGENTBOX_DESKTOP_H

#include <stddef.h>
#include <stdint.h>

/// The largest side of a display or a screenshot, in pixels.
#define AB_DESKTOP_MAX_SIDE 8192

/// Reads one X11 GetImage reply (ZPixmap, 32 bits per pixel) of `width` × `height` pixels from the blocking socket
/// `fd`, after the caller sent the request as the connection's only outstanding one. The pixels go to `pixels`
/// (`width * height * 4` bytes, B G R X order for an LSBFirst server). Returns 0; -1 with errno set when the
/// socket fails; -2 when the server answered with an X error (its code in `*x_error`); -3 when the reply does not
/// have the size the request asked for (a broken or hostile server).
int ab_x11_read_image(int fd, uint8_t *pixels, int width, int height, int *x_error);

/// Encodes the `width` × `height` B G R X pixels at `pixels` (rows `stride` bytes apart) as an RGB PNG of
/// `out_width` × `out_height` (a smaller size is an area-averaged downscale; a larger one repeats pixels), into a
/// buffer it allocates (`*png`, `*png_length`; free it with `free`). zlib's fastest level with the RLE strategy and
/// the Sub filter: screens are mostly flat colours. Returns 0, or -1 (no memory, or a size out of range).
int ab_png_encode_bgrx(
    const uint8_t *pixels, int width, int height, size_t stride, int out_width, int out_height, uint8_t **png,
    size_t *png_length);

#endif
