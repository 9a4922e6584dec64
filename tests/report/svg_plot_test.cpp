// Pins report/svg_plot.hpp: a heatmap renders one cell per finite value with
// a shared colour scale, escapes labels, and is well-formed enough to open.
#include "qlora/report/svg_plot.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace {

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

TEST(SvgPlot, HeatmapCellsLabelsAndScale) {
  qlora::report::Heatmap a{"q4_k_m <a&b>", {"blk.0", "blk.1"}, {"attn_q", "ffn_down"}, {{1.0, 10.0}, {NAN, 100.0}}};
  qlora::report::Heatmap b{"q8_0", {"blk.0"}, {"attn_q"}, {{0.1}}};
  const std::string svg = qlora::report::render_heatmaps({a, b}, "relative RMSE, %");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("q4_k_m &lt;a&amp;b&gt;"), std::string::npos);  // escaped title
  EXPECT_EQ(count(svg, "<title>"), 4u);                                // 4 finite cells, the NaN is empty
  EXPECT_NE(svg.find(">0.1<"), std::string::npos);                      // legend spans both panels
  EXPECT_NE(svg.find(">100<"), std::string::npos);
  EXPECT_NE(svg.find("(log scale)"), std::string::npos);
}

TEST(SvgPlot, WriteTextFileReportsBadPath) {
  const qlora::Status st = qlora::report::write_text_file("/nonexistent-dir/x.svg", "<svg/>");
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("/nonexistent-dir/x.svg"), std::string::npos);
}

}  // namespace
