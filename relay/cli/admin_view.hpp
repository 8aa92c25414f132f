#pragma once
// What the get-* verbs print. Each object kind has one property table: every
// property once, with its Format-List text and its JSON value; one renderer
// turns it into PowerShell's Format-List or, with --json, into JSON.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "relay/cli/admin_context.hpp"

namespace subrelay::relay::admin {

namespace json = boost::json;

template <class T>
struct property {
    std::string name;                                 // "SmtpClientAuthenticationDisabled"
    std::function<std::string(const T&)> text;        // as Format-List shows it
    std::function<json::value(const T&)> json_value;  // as --json gives it
};

template <class T>
using property_table = std::vector<property<T>>;

// The two forms of the values the policy holds. Unset values (nullopt) are
// blank in the list and null in JSON; a list is "{a, b}" and a JSON array.
std::string as_text(const std::string& s);
std::string as_text(const std::optional<std::string>& s);
std::string as_text(bool b);  // True, False
std::string as_text(std::optional<bool> b);
std::string as_text(std::uint32_t n);
std::string as_text(std::optional<std::uint32_t> n);
std::string as_text(const std::vector<std::string>& values);
json::value as_json(const std::string& s);
json::value as_json(const std::optional<std::string>& s);
json::value as_json(bool b);
json::value as_json(std::optional<bool> b);
json::value as_json(std::uint32_t n);
json::value as_json(std::optional<std::uint32_t> n);
json::value as_json(const std::vector<std::string>& values);

// A policy string where empty means unset (UpstreamMailbox): blank, or null.
inline std::optional<std::string> unless_empty(const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

// A property whose two forms follow from the type `get` returns.
template <class T, class Get>
property<T> prop(std::string name, Get get) {
    return {std::move(name), [get](const T& x) { return as_text(get(x)); },
            [get](const T& x) { return as_json(get(x)); }};
}

template <class T>
std::vector<std::pair<std::string, std::string>> list_rows(const property_table<T>& table, const T& x) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& p : table) rows.emplace_back(p.name, p.text(x));
    return rows;
}

template <class T>
json::object json_object(const property_table<T>& table, const T& x) {
    json::object o;
    for (const auto& p : table) o[p.name] = p.json_value(x);
    return o;
}

// One object (get-transportconfig): a Format-List, or with --json an object.
template <class T>
void show(const context& c, const property_table<T>& table, const T& x) {
    if (c.opts.flag(o_json)) {
        c.out << json::serialize(json_object(table, x)) << '\n';
    } else {
        format_list(c.out, list_rows(table, x));
    }
}

// Objects of one kind (get-casmailbox): Format-Lists separated by a blank
// line, or with --json an array of objects.
template <class T>
void show(const context& c, const property_table<T>& table, const std::vector<const T*>& objects) {
    if (c.opts.flag(o_json)) {
        json::array a;
        for (const T* x : objects) a.push_back(json_object(table, *x));
        c.out << json::serialize(a) << '\n';
        return;
    }
    for (std::size_t i = 0; i < objects.size(); ++i) {
        if (i > 0) c.out << '\n';
        format_list(c.out, list_rows(table, *objects[i]));
    }
}

}  // namespace subrelay::relay::admin
