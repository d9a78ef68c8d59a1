// Pictures the command-line tool writes: image grids, a 2-D scatter coloured by label and line
// plots of training curves, as RGB canvases saved to PNG (stb_image_write) atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace latent::app {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return width_; }
  int height() const { return height_; }
  void set(int x, int y, Rgb c);  // ignores pixels outside the canvas
  Rgb get(int x, int y) const;
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c);  // inclusive-exclusive
  void line(double x0, double y0, double x1, double y1, Rgb c);
  // Digits, '.', '-', '+', 'e' and a few letters in a 3x5 bitmap font, scaled by `scale`.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  // Writes a PNG through a temporary file and a rename: an interrupted write never leaves a
  // half-written picture. Throws latent::Error naming the path on failure.
  void save_png(const std::string& path) const;

 private:
  int width_, height_;
  std::vector<std::uint8_t> rgb_;
};

// How a row of data is drawn: h x w pixels of c channels (1: grey, 3: RGB, interleaved per pixel
// as NumPy's [H, W, C]). Undefined (h == 0): the rows are not pictures.
struct ImageShape {
  int h = 0, w = 0, c = 1;
  bool defined() const { return h > 0; }
  std::int64_t size() const { return std::int64_t{h} * w * c; }
};
// "HxW" or "HxWxC" (C 1 or 3); throws latent::Error naming `flag` for anything else.
ImageShape parse_image_shape(const std::string& text, const std::string& flag);

// Images (values in [0, 1], shape.size() values each, row-major in `pixels`) tiled in `cols`
// columns with a 2-pixel gap, each pixel drawn as `zoom` x `zoom`.
Canvas image_grid(const std::vector<float>& pixels, std::int64_t count, ImageShape shape, int cols,
                  int zoom = 2);
// Square grey images of side x side.
inline Canvas image_grid(const std::vector<float>& pixels, std::int64_t count, int side, int cols,
                         int zoom = 2) {
  return image_grid(pixels, count, ImageShape{side, side, 1}, cols, zoom);
}

// The colour of label k (a 10-colour palette, repeating) in scatter().
Rgb palette(int k);

// Points (x, y) coloured by integer label (10-colour palette), scaled to fit, with a legend of the
// labels' `names` (their numbers where a name is missing).
Canvas scatter(const std::vector<float>& xy, const std::vector<float>& labels, int size = 600,
               const std::vector<std::string>& names = {});

struct Series {
  std::string name;
  std::vector<double> y;  // one value per x = 1, 2, ...
  Rgb colour;
};
// Line plot of the series on common axes with the y range printed, `y_title` above the y axis
// and "EPOCH" under the x axis.
Canvas line_plot(const std::vector<Series>& series, int width = 640, int height = 400,
                 const std::string& y_title = "");

}  // namespace latent::app
