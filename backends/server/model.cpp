#include "backends/server/model.h"

#include <algorithm>

namespace cb::server {

void Control::on_stop(std::function<void()> fn) {
  std::unique_lock lock(mu_);
  if (stopping()) {
    lock.unlock();
    fn();
    return;
  }
  on_stop_.push_back(std::move(fn));
}

void Control::request_stop() {
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(mu_);
    if (stopping()) return;
    stopping_.store(true, std::memory_order_release);
    fns.swap(on_stop_);
  }
  for (auto& fn : fns) fn();
}

std::string traits_text(const ModelTraits& traits) {
  std::string text;
  if (traits.bounded) text += "bounded";
  if (traits.instrument) text += text.empty() ? "instrument" : ",instrument";
  return text.empty() ? "-" : text;
}

namespace {
std::vector<ModelSpec>& registry() {
  static std::vector<ModelSpec> specs;
  return specs;
}
}  // namespace

bool Registry::add(const ModelSpec& spec) {
  registry().push_back(spec);
  return true;
}

std::vector<ModelSpec> Registry::all() {
  auto specs = registry();
  std::sort(specs.begin(), specs.end(), [](const ModelSpec& a, const ModelSpec& b) { return a.name < b.name; });
  return specs;
}

const ModelSpec* Registry::find(std::string_view name) {
  for (const auto& s : registry())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace cb::server
