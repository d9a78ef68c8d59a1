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

// Square grey images (values in [0, 1], side*side each, row-major in `pixels`) tiled in `cols`
// columns with a 2-pixel gap, each pixel drawn as `zoom` x `zoom`.
Canvas image_grid(const std::vector<float>& pixels, std::int64_t count, int side, int cols,
                  int zoom = 2);

// Points (x, y) coloured by integer label (10-colour palette), scaled to fit.
Canvas scatter(const std::vector<float>& xy, const std::vector<float>& labels, int size = 600);

struct Series {
  std::string name;
  std::vector<double> y;  // one value per x = 1, 2, ...
  Rgb colour;
};
// Line plot of the series on common axes with the y range printed.
Canvas line_plot(const std::vector<Series>& series, int width = 640, int height = 400);

}  // namespace latent::app
