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

TEST(SvgPlot, ScatterDrawsFinitePointsWithTooltipsAndDiagonal) {
  qlora::report::ScatterChart c;
  c.title = "per question";
  c.series = {"q8_0", "q4_k_m"};
  c.x = {{1.0, 2.0, NAN}, {0.5}};
  c.y = {{1.1, 2.5, 3.0}, {0.7}};
  c.labels = {{"a", "b", "c"}, {"d"}};
  c.diagonal = true;
  const std::string svg = qlora::report::render_scatter_chart(c);
  EXPECT_EQ(count(svg, "<title>"), 3u);  // the NaN point is left out
  EXPECT_NE(svg.find("<title>b: 2, 2.5</title>"), std::string::npos) << svg;
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  // Jitter moves points but is the same on every call.
  c.jitter = 0.3;
  EXPECT_EQ(qlora::report::render_scatter_chart(c), qlora::report::render_scatter_chart(c));
  EXPECT_NE(qlora::report::render_scatter_chart(c), svg);
}

TEST(SvgPlot, StackedChartsAreOneDocument) {
  qlora::report::LineChart a;
  a.series = {"s"};
  a.x_labels = {"1", "2"};
  a.values = {{1, 2}};
  const std::string one = qlora::report::render_line_chart(a);
  const std::string both = qlora::report::stack_charts({one, one});
  EXPECT_EQ(both.rfind("<svg xmlns", 0), 0u);
  EXPECT_EQ(count(both, "<svg"), 3u);
  EXPECT_EQ(count(both, "</svg>"), 3u);
  EXPECT_NE(both.find("<svg y=\"410\""), std::string::npos) << both.substr(0, 300);  // second chart below the first
}

}  // namespace
