// Research code as a user writes it: include the headers, quantize a row,
// check the round trip. Exit code 0 means the installed package works.
#include <cmath>
#include <cstdio>
#include <vector>

#include "qlora/quant/row.hpp"

int main() {
  using namespace qlora::quant;
  std::vector<float> x(512);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i));
  std::vector<FormatTraits<format::Q4_K>::Block> q(2);
  std::vector<float> y(512);
  quantize_row<format::Q4_K>(x.data(), q.data(), 512);
  dequantize_row<format::Q4_K>(q.data(), y.data(), 512);
  double err = 0;
  for (std::size_t i = 0; i < x.size(); ++i) err = std::fmax(err, std::fabs(x[i] - y[i]));
  std::printf("q4_K max error %.4f\n", err);
  return err < 0.1 ? 0 : 1;
}
