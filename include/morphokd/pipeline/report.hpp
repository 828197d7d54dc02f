// The report of an experiment (experiment.hpp): OUT/report.md with the paper's tables and
// figures under the paper's own numbering, built from the cells' evaluation files alone,
// so the same files always give the same report, byte for byte.
#pragma once
#include <string>

namespace morphokd::pipeline {

struct ReportOptions {
  std::string dir;     // the experiment's --out
  std::string out;     // folder for report.md and its PNG figures; empty: DIR/report
  std::string readme;  // if set: this Markdown file's marked results section is replaced by the report
  std::string command; // the call, printed in the report
};

// Writes report.md and its figures (staged: all or nothing) and returns report.md's path.
// Error naming the cell when one is unfinished or its files are missing or malformed.
std::string write_report(const ReportOptions& o);

// `text` with everything between the lines "<!-- morphokd report: begin -->" and
// "<!-- morphokd report: end -->" replaced by `section`; Error naming `name` when the
// markers are missing, repeated or out of order.
std::string replace_report_section(const std::string& text, const std::string& section, const std::string& name);

}  // namespace morphokd::pipeline
