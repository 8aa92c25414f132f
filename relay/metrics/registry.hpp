#pragma once
// A small metrics registry: families of counters, gauges and histograms,
// each with fixed label names and one series per set of label values, and
// their exposition in the Prometheus text format (version 0.0.4).
//
// Thread-safe: sessions and the delivery update series from their own
// threads while the admin listener reads them. Each family has its own
// mutex; an update is a map look-up and an addition under it.
//
// Families are created once, at start-up, and live as long as the registry
// (references to them stay valid). Their names and help text are the
// program's own; label values may be anything and are escaped on output.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace subrelay::metrics {

using label_values = std::vector<std::string>;

class family {
public:
    family(std::string name, std::string help, std::vector<std::string> label_names)
        : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}
    virtual ~family() = default;
    family(const family&) = delete;
    family& operator=(const family&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::vector<std::string>& label_names() const { return label_names_; }
    // Appends the family's HELP, TYPE and sample lines.
    virtual void expose(std::string& out) const = 0;

protected:
    // `{a="x",b="y"}` for these values (with `extra` appended, e.g. le), or "" without labels.
    [[nodiscard]] std::string label_text(const label_values& values, std::string_view extra = {}) const;
    // Throws std::invalid_argument when the count of values does not match the label names.
    void check(const label_values& values) const;
    void header(std::string& out, std::string_view type) const;

    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
};

// A value that only goes up (or is taken from a source that only goes up).
class counter_family final : public family {
public:
    using family::family;
    void inc(const label_values& values = {}, double by = 1);
    // Sets a series to a total kept elsewhere (read at scrape time).
    void set_total(const label_values& values, double total);
    [[nodiscard]] double value(const label_values& values = {}) const;
    void expose(std::string& out) const override;

private:
    mutable std::mutex mutex_;
    std::map<label_values, double> series_;
};

// A value that goes up and down.
class gauge_family final : public family {
public:
    using family::family;
    void set(const label_values& values, double v);
    void set(double v) { set({}, v); }
    void add(const label_values& values, double by);
    // Replaces every series at once (values computed at scrape time: a
    // label set that is gone disappears).
    void replace(std::map<label_values, double> series);
    [[nodiscard]] double value(const label_values& values = {}) const;
    void expose(std::string& out) const override;

private:
    mutable std::mutex mutex_;
    std::map<label_values, double> series_;
};

// Observations counted into cumulative buckets, with their sum and count.
class histogram_family final : public family {
public:
    // `bounds`: the upper bounds of the buckets, increasing; +Inf is added.
    histogram_family(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> bounds);
    void observe(const label_values& values, double v);
    void observe(double v) { observe({}, v); }
    struct snapshot {
        std::vector<std::uint64_t> buckets;  // cumulative, one per bound, then +Inf
        double sum = 0;
        std::uint64_t count = 0;
    };
    [[nodiscard]] snapshot value(const label_values& values = {}) const;
    void expose(std::string& out) const override;

private:
    struct series {
        std::vector<std::uint64_t> counts;  // per bucket, not cumulative; the last is +Inf
        double sum = 0;
        std::uint64_t count = 0;
    };
    std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::map<label_values, series> series_;
};

class registry {
public:
    // Throws std::invalid_argument for a name or label name Prometheus does
    // not allow, or a name already registered.
    counter_family& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
    gauge_family& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
    histogram_family& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                std::vector<double> bounds);

    // Every family in the order registered, in the text format.
    [[nodiscard]] std::string expose() const;
    // The names of the families registered.
    [[nodiscard]] std::vector<std::string> names() const;

private:
    void add(std::unique_ptr<family> f);

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<family>> families_;
};

// Prometheus' rules: [a-zA-Z_:][a-zA-Z0-9_:]* for metric names,
// [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__") for label names.
[[nodiscard]] bool valid_metric_name(std::string_view name);
[[nodiscard]] bool valid_label_name(std::string_view name);
// A label value as it is written between quotes: \ " and newline escaped.
[[nodiscard]] std::string escape_label_value(std::string_view value);
// HELP text: \ and newline escaped.
[[nodiscard]] std::string escape_help(std::string_view text);
// A sample value: integers without a fraction, "+Inf", "-Inf", "NaN".
[[nodiscard]] std::string format_value(double v);

}  // namespace subrelay::metrics
