#include "agent/model/yaml_stream.h"

#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace kernelet::agent {

namespace {

// Counts the nodes of each document as a walk would visit them and notes the
// first document that starts where the previous one did (no token consumed:
// LoadAll would repeat it for ever).
class Checker : public YAML::EventHandler {
 public:
  explicit Checker(uint64_t max_nodes) : max_nodes_(max_nodes) {}

  // Where the stream is refused, or nothing.
  std::optional<YAML::Mark> stuckAt;
  std::optional<YAML::Mark> tooManyAt;
  std::optional<YAML::Mark> cycleAt;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (last_start_ && mark.pos <= last_start_->pos) {
      stuckAt = mark;
    }
    last_start_ = mark;
    doc_start_ = mark;
    nodes_ = 0;
    sizes_.clear();
    open_.clear();
    open_anchors_.clear();
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t anchor) override { leaf(1, anchor); }
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t anchor,
                const std::string& /*value*/) override {
    leaf(1, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // yaml-cpp links an alias inside its own anchored node back to that node:
    // the document becomes a cycle that every recursive walk follows for ever.
    if (open_anchors_.contains(anchor) && !cycleAt) {
      cycleAt = mark;
    }
    auto it = sizes_.find(anchor);
    leaf(it == sizes_.end() ? 1 : it->second, YAML::NullAnchor);
  }
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/,
                       YAML::anchor_t anchor, YAML::EmitterStyle::value /*style*/) override {
    open(anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    open(anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  // Node counts stay below max_nodes_ + the largest anchored size, so below
  // 2 * max_nodes_: adding never overflows.
  void leaf(uint64_t n, YAML::anchor_t anchor) {
    nodes_ += n;
    if (anchor != YAML::NullAnchor) {
      sizes_[anchor] = n;
    }
    check();
  }
  void open(YAML::anchor_t anchor) {
    open_.push_back({nodes_, anchor});
    if (anchor != YAML::NullAnchor) {
      open_anchors_.insert(anchor);
    }
    nodes_ += 1;
    check();
  }
  void close() {
    if (open_.empty()) {
      return;
    }
    auto [start, anchor] = open_.back();
    open_.pop_back();
    open_anchors_.erase(anchor);
    if (anchor != YAML::NullAnchor) {
      sizes_[anchor] = nodes_ - start;
    }
  }
  void check() {
    if (nodes_ > max_nodes_ && !tooManyAt) {
      tooManyAt = doc_start_;
    }
  }

  uint64_t max_nodes_;
  std::optional<YAML::Mark> last_start_;
  YAML::Mark doc_start_;
  uint64_t nodes_ = 0;
  std::map<YAML::anchor_t, uint64_t> sizes_;               // expanded size of each anchor
  std::vector<std::pair<uint64_t, YAML::anchor_t>> open_;  // collections: nodes_ at start, anchor
  std::set<YAML::anchor_t> open_anchors_;                  // anchors of open collections
};

std::string lineOf(const YAML::Mark& m) { return "line " + std::to_string(m.line + 1); }

}  // namespace

Result<std::vector<YAML::Node>> loadYamlDocuments(const std::string& text, const std::string& op,
                                                  const std::string& name, YamlLimits limits) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    Checker checker(limits.max_expanded_nodes);
    while (parser.HandleNextDocument(checker)) {
      if (checker.stuckAt) {
        const YAML::Mark& m = *checker.stuckAt;
        std::string what = m.pos >= 0 && static_cast<size_t>(m.pos) < text.size()
                               ? "\"" + text.substr(m.pos, 1) + "\""
                               : "this";
        return makeError(op, name,
                         lineOf(m) + ", column " + std::to_string(m.column + 1) + ": " + what +
                             " cannot start a document (a ',' outside [] or {}?)");
      }
      if (checker.cycleAt) {
        return makeError(op, name,
                         lineOf(*checker.cycleAt) + ": an alias inside the node it refers to");
      }
      if (checker.tooManyAt) {
        return makeError(op, name,
                         lineOf(*checker.tooManyAt) + ": the document expands to more than " +
                             std::to_string(limits.max_expanded_nodes) +
                             " nodes (aliases count what they repeat)");
      }
    }
    return YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return makeError(op, name, lineOf(e.mark) + ": " + e.msg);
  } catch (const std::exception& e) {
    return makeError(op, name, e.what());
  }
}

}  // namespace kernelet::agent
