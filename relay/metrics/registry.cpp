#include "relay/metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace subrelay::metrics {

namespace {

bool name_char(char c, bool first, bool colon) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    return letter || (!first && c >= '0' && c <= '9');
}

}  // namespace

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, true)) return false;
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.starts_with("__")) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, false)) return false;
    return true;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<std::int64_t>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string family::label_text(const label_values& values, std::string_view extra) const {
    if (values.empty() && extra.empty()) return {};
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ',';
        out += label_names_[i] + "=\"" + escape_label_value(values[i]) + "\"";
    }
    if (!extra.empty()) {
        if (!values.empty()) out += ',';
        out += extra;
    }
    return out + "}";
}

void family::check(const label_values& values) const {
    if (values.size() != label_names_.size())
        throw std::invalid_argument(name_ + ": " + std::to_string(label_names_.size()) + " label value(s) expected, got " +
                                    std::to_string(values.size()));
}

void family::header(std::string& out, std::string_view type) const {
    out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
    out += "# TYPE " + name_ + " ";
    out += type;
    out += "\n";
}

void counter_family::inc(const label_values& values, double by) {
    check(values);
    if (by < 0) throw std::invalid_argument(name_ + ": a counter does not go down");
    std::lock_guard lock(mutex_);
    series_[values] += by;
}

void counter_family::set_total(const label_values& values, double total) {
    check(values);
    std::lock_guard lock(mutex_);
    series_[values] = total;
}

double counter_family::value(const label_values& values) const {
    std::lock_guard lock(mutex_);
    const auto it = series_.find(values);
    return it == series_.end() ? 0 : it->second;
}

void counter_family::expose(std::string& out) const {
    header(out, "counter");
    std::lock_guard lock(mutex_);
    // A counter without labels exists from the start, at 0.
    if (series_.empty() && label_names_.empty()) out += name_ + " 0\n";
    for (const auto& [values, v] : series_) out += name_ + label_text(values) + " " + format_value(v) + "\n";
}

void gauge_family::set(const label_values& values, double v) {
    check(values);
    std::lock_guard lock(mutex_);
    series_[values] = v;
}

void gauge_family::add(const label_values& values, double by) {
    check(values);
    std::lock_guard lock(mutex_);
    series_[values] += by;
}

void gauge_family::replace(std::map<label_values, double> series) {
    for (const auto& [values, v] : series) check(values);
    std::lock_guard lock(mutex_);
    series_ = std::move(series);
}

double gauge_family::value(const label_values& values) const {
    std::lock_guard lock(mutex_);
    const auto it = series_.find(values);
    return it == series_.end() ? 0 : it->second;
}

void gauge_family::expose(std::string& out) const {
    header(out, "gauge");
    std::lock_guard lock(mutex_);
    if (series_.empty() && label_names_.empty()) out += name_ + " 0\n";
    for (const auto& [values, v] : series_) out += name_ + label_text(values) + " " + format_value(v) + "\n";
}

histogram_family::histogram_family(std::string name, std::string help, std::vector<std::string> label_names,
                                   std::vector<double> bounds)
    : family(std::move(name), std::move(help), std::move(label_names)), bounds_(std::move(bounds)) {
    if (bounds_.empty() || !std::is_sorted(bounds_.begin(), bounds_.end()) ||
        std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end() || std::isinf(bounds_.back()))
        throw std::invalid_argument(name_ + ": bucket bounds must be finite and strictly increasing");
    for (const auto& l : label_names_)
        if (l == "le") throw std::invalid_argument(name_ + ": a histogram has no label \"le\" of its own");
}

void histogram_family::observe(const label_values& values, double v) {
    check(values);
    const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    std::lock_guard lock(mutex_);
    series& s = series_[values];
    if (s.counts.empty()) s.counts.assign(bounds_.size() + 1, 0);
    ++s.counts[bucket];
    s.sum += v;
    ++s.count;
}

histogram_family::snapshot histogram_family::value(const label_values& values) const {
    snapshot out;
    out.buckets.assign(bounds_.size() + 1, 0);
    std::lock_guard lock(mutex_);
    const auto it = series_.find(values);
    if (it == series_.end()) return out;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < it->second.counts.size(); ++i) {
        running += it->second.counts[i];
        out.buckets[i] = running;
    }
    out.sum = it->second.sum;
    out.count = it->second.count;
    return out;
}

void histogram_family::expose(std::string& out) const {
    header(out, "histogram");
    std::map<label_values, series> copy;
    {
        std::lock_guard lock(mutex_);
        copy = series_;
    }
    if (copy.empty() && label_names_.empty()) copy[{}].counts.assign(bounds_.size() + 1, 0);
    for (const auto& [values, s] : copy) {
        std::uint64_t running = 0;
        for (std::size_t i = 0; i <= bounds_.size(); ++i) {
            running += s.counts[i];
            const std::string le = i < bounds_.size() ? format_value(bounds_[i]) : "+Inf";
            out += name_ + "_bucket" + label_text(values, "le=\"" + le + "\"") + " " + std::to_string(running) + "\n";
        }
        out += name_ + "_sum" + label_text(values) + " " + format_value(s.sum) + "\n";
        out += name_ + "_count" + label_text(values) + " " + std::to_string(s.count) + "\n";
    }
}

namespace {

void check_names(const std::string& name, const std::vector<std::string>& label_names) {
    if (!valid_metric_name(name)) throw std::invalid_argument("not a valid metric name: " + name);
    for (const auto& l : label_names)
        if (!valid_label_name(l)) throw std::invalid_argument(name + ": not a valid label name: " + l);
}

}  // namespace

void registry::add(std::unique_ptr<family> f) {
    std::lock_guard lock(mutex_);
    for (const auto& existing : families_)
        if (existing->name() == f->name()) throw std::invalid_argument("metric registered twice: " + f->name());
    families_.push_back(std::move(f));
}

counter_family& registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
    check_names(name, label_names);
    auto f = std::make_unique<counter_family>(std::move(name), std::move(help), std::move(label_names));
    auto& ref = *f;
    add(std::move(f));
    return ref;
}

gauge_family& registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
    check_names(name, label_names);
    auto f = std::make_unique<gauge_family>(std::move(name), std::move(help), std::move(label_names));
    auto& ref = *f;
    add(std::move(f));
    return ref;
}

histogram_family& registry::histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                      std::vector<double> bounds) {
    check_names(name, label_names);
    auto f = std::make_unique<histogram_family>(std::move(name), std::move(help), std::move(label_names),
                                                std::move(bounds));
    auto& ref = *f;
    add(std::move(f));
    return ref;
}

std::string registry::expose() const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) f->expose(out);
    return out;
}

std::vector<std::string> registry::names() const {
    std::vector<std::string> out;
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) out.push_back(f->name());
    return out;
}

}  // namespace subrelay::metrics
