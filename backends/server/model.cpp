#include "backends/server/model.h"

#include <algorithm>
#include <charconv>

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

std::string_view Options::value(const ModelOption& option) const {
  for (const auto& [flag, value] : model_args_)
    if (flag == option.flag) return value;
  return option.fallback;
}

namespace {
bool parse_int(std::string_view text, int& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}
}  // namespace

int Options::int_value(const ModelOption& option) const {
  int v = 0;
  if (parse_int(value(option), v)) return v;
  return parse_int(option.fallback, v) ? v : 0;
}

void Options::set(std::string_view flag, std::string value) {
  for (auto& [f, v] : model_args_)
    if (f == flag) {
      v = std::move(value);
      return;
    }
  model_args_.emplace_back(std::string(flag), std::move(value));
}

const ModelOption* find_option(const ModelSpec& spec, std::string_view flag) {
  for (const ModelOption& o : spec.options)
    if (o.flag == flag) return &o;
  return nullptr;
}

std::string check_option(const ModelOption& option, std::string_view value) {
  const std::string flag(option.flag);
  const std::string got = "got '" + std::string(value) + "'";
  switch (option.kind) {
    case ArgKind::flag: return {};
    case ArgKind::integer: {
      int v = 0;
      if (parse_int(value, v) && v >= option.min && v <= option.max) return {};
      return flag + " wants an integer from " + std::to_string(option.min) + " to " + std::to_string(option.max) +
             ", " + got;
    }
    case ArgKind::word: {
      // "a or b", "a, b or c": the words of option.words, split at '|'.
      std::vector<std::string_view> words;
      for (std::size_t at = 0; at <= option.words.size();) {
        std::size_t bar = option.words.find('|', at);
        if (bar == std::string_view::npos) bar = option.words.size();
        words.push_back(option.words.substr(at, bar - at));
        at = bar + 1;
      }
      std::string wanted;
      for (std::size_t i = 0; i < words.size(); ++i) {
        if (words[i] == value) return {};
        wanted += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + std::string(words[i]);
      }
      return flag + " wants " + wanted + ", " + got;
    }
  }
  return {};
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
