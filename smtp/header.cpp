#include "smtp/header.hpp"

#include <algorithm>

#include <cstring>
#include <optional>

#include "smtp/address.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::smtp {

void header_collector::add(std::string_view piece) {
    if (ended_ || truncated_) return;
    std::size_t n = 0;  // the bytes of `piece` that belong to the header section
    for (; n < piece.size(); ++n) {
        const char c = piece[n];
        if (c == '\n' && after_cr_) {  // the LF of a CRLF
            after_cr_ = false;
            continue;
        }
        after_cr_ = false;
        if (c == '\r' || c == '\n') {
            if (at_line_start_) {
                ended_ = true;
                break;
            }
            at_line_start_ = true;
            after_cr_ = c == '\r';
        } else {
            at_line_start_ = false;
        }
    }
    if (header_.size() + n > limit_) {
        header_.append(piece.substr(0, limit_ - header_.size()));
        truncated_ = true;
        ended_ = false;
        return;
    }
    header_.append(piece.substr(0, n));
}

void header_collector::clear() {
    const std::size_t limit = limit_;
    *this = header_collector(limit);
}

namespace {

// One lexical unit of a field value; white space and comments are dropped.
struct token {
    enum kind_t { atom, quoted, literal, special } kind;
    std::string text;  // the atom, the quoted string's content (unescaped), "[literal]", or the special
};

bool is_atext(unsigned char c) {
    if (c >= 0x80) return true;  // UTF-8 (RFC 6532); valid_mailbox checks the addresses
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

bool is_dot_atom(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '.') {
            if (s[i + 1] == '.') return false;  // safe: s.back() != '.'
        } else if (!is_atext(c)) {
            return false;
        }
    }
    return true;
}

// Splits a field value into tokens. "" when it could, else what is wrong.
std::string tokenize(std::string_view v, std::vector<token>& out) {
    std::size_t i = 0;
    while (i < v.size()) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c == ' ' || c == '\t') {
            ++i;
        } else if (c == '(') {
            // A comment, nested ones inside, quoted-pairs escaping anything.
            std::size_t depth = 0;
            for (; i < v.size(); ++i) {
                if (v[i] == '\\') {
                    ++i;
                } else if (v[i] == '(') {
                    ++depth;
                } else if (v[i] == ')' && --depth == 0) {
                    break;
                }
            }
            if (i >= v.size()) return "unterminated comment";
            ++i;
        } else if (c == '"') {
            std::string content;
            for (++i; i < v.size() && v[i] != '"'; ++i) {
                if (v[i] == '\\') {
                    if (++i == v.size()) break;
                }
                content += v[i];
            }
            if (i >= v.size()) return "unterminated quoted string";
            ++i;
            out.push_back({token::quoted, std::move(content)});
        } else if (c == '[') {
            std::string literal = "[";
            for (++i; i < v.size() && v[i] != ']'; ++i) {
                if (v[i] == '[') return "'[' inside a domain literal";
                if (v[i] == '\\') {
                    if (++i == v.size()) break;
                }
                if (v[i] != ' ' && v[i] != '\t') literal += v[i];
            }
            if (i >= v.size()) return "unterminated domain literal";
            ++i;
            out.push_back({token::literal, literal + "]"});
        } else if (std::strchr("<>:;@,.", c) != nullptr && c != 0) {
            out.push_back({token::special, std::string(1, static_cast<char>(c))});
            ++i;
        } else if (is_atext(c)) {
            const std::size_t start = i;
            while (i < v.size() && is_atext(static_cast<unsigned char>(v[i]))) ++i;
            out.push_back({token::atom, std::string(v.substr(start, i - start))});
        } else if (c < 0x20 || c == 0x7f) {
            return "control character";
        } else {
            return std::string("unexpected '") + static_cast<char>(c) + "'";
        }
    }
    return {};
}

// A recursive-descent reader over the tokens of one value.
class list_reader {
public:
    explicit list_reader(std::vector<token> tokens) : t_(std::move(tokens)) {}

    // "" when the whole value was read, else what is wrong.
    std::string read(std::vector<std::string>& out) {
        while (true) {
            while (is(",")) ++p_;  // obs-addr-list: empty elements
            if (at_end()) return {};
            if (auto why = address(out, true); !why.empty()) return why;
            if (at_end()) return {};
            if (!is(",")) return unexpected();
        }
    }

private:
    std::vector<token> t_;
    std::size_t p_ = 0;

    [[nodiscard]] bool at_end() const { return p_ >= t_.size(); }
    [[nodiscard]] bool is(const char* special) const {
        return !at_end() && t_[p_].kind == token::special && t_[p_].text == special;
    }
    [[nodiscard]] bool is_word(std::size_t at) const {
        return at < t_.size() && (t_[at].kind == token::atom || t_[at].kind == token::quoted);
    }
    [[nodiscard]] std::string unexpected() const {
        if (at_end()) return "unexpected end";
        const auto& tk = t_[p_];
        if (tk.kind == token::special) return "unexpected '" + tk.text + "'";
        return "unexpected text after an address";
    }

    // A mailbox, or (at the top level) a group.
    std::string address(std::vector<std::string>& out, bool group_allowed) {
        // A phrase (display name) or a local part: words and dots.
        const std::size_t start = p_;
        while (is_word(p_) || is(".")) ++p_;
        const std::size_t end = p_;
        if (is("<")) return angle_addr(out);
        if (is("@")) {
            std::string address;
            if (auto why = addr_spec_from(start, end, address); !why.empty()) return why;
            out.push_back(std::move(address));
            // Not RFC 5322, but devices write it: an address as an unquoted
            // display name, "scanner@x <scanner@x>". Both addresses count.
            if (is("<")) return angle_addr(out);
            return {};
        }
        if (is(":")) {
            if (!group_allowed) return "a group inside a group";
            if (start == end) return "a group without a name";
            ++p_;
            return group_list(out);
        }
        if (start == end) return unexpected();
        return "an address without '@'";
    }

    // After "Name:": mailboxes up to ";" (a missing ";" at the end is tolerated).
    std::string group_list(std::vector<std::string>& out) {
        while (true) {
            while (is(",")) ++p_;
            if (is(";")) {
                ++p_;
                return {};
            }
            if (at_end()) return {};
            if (auto why = address(out, false); !why.empty()) return why;
            if (!is(",") && !is(";") && !at_end()) return unexpected();
        }
    }

    // "<" [obs-route] addr-spec ">", at "<".
    std::string angle_addr(std::vector<std::string>& out) {
        ++p_;
        if (is(">")) {  // "<>" (as in bounces): no address, nobody to send as
            ++p_;
            return {};
        }
        if (is("@")) {
            // obs-route: "@a.example,@b.example:" before the address; ignored.
            while (is("@") || is(",")) {
                if (is(",")) {
                    ++p_;
                    continue;
                }
                ++p_;
                std::string ignored;
                if (auto why = domain(ignored); !why.empty()) return why;
            }
            if (!is(":")) return "a route without ':'";
            ++p_;
        }
        const std::size_t start = p_;
        while (is_word(p_) || is(".")) ++p_;
        if (!is("@")) return at_end() ? "unterminated <address>" : "an address without '@'";
        std::string address;
        if (auto why = addr_spec_from(start, p_, address); !why.empty()) return why;
        if (!is(">")) return at_end() ? "unterminated <address>" : unexpected();
        ++p_;
        out.push_back(std::move(address));
        return {};
    }

    // The local part is tokens [start, end) (words separated by dots), p_ is at "@".
    std::string addr_spec_from(std::size_t start, std::size_t end, std::string& address) {
        if (start == end) return "an address without a local part";
        std::string local;
        bool quoted = false;
        for (std::size_t i = start; i < end; ++i) {
            const bool word_expected = (i - start) % 2 == 0;
            if (word_expected != is_word(i)) return "a local part that is not words separated by dots";
            if (t_[i].kind == token::quoted) quoted = true;
            local += t_[i].text;
        }
        if ((end - start) % 2 == 0) return "a local part ending in '.'";
        if (quoted && !is_dot_atom(local)) {
            std::string q = "\"";
            for (const char c : local) {
                if (c == '"' || c == '\\') q += '\\';
                q += c;
            }
            local = q + "\"";
        }
        ++p_;  // "@"
        std::string d;
        if (auto why = domain(d); !why.empty()) return why;
        address = local + "@" + d;
        if (!valid_mailbox(address)) return "not a valid address";
        return {};
    }

    // dot-atom (or obs-domain) or a domain literal.
    std::string domain(std::string& out) {
        if (!at_end() && t_[p_].kind == token::literal) {
            out = t_[p_++].text;
            return {};
        }
        if (at_end() || t_[p_].kind != token::atom) return "an address without a domain";
        out = t_[p_++].text;
        while (is(".")) {
            ++p_;
            if (at_end() || t_[p_].kind != token::atom) return "a domain ending in '.'";
            out += '.';
            out += t_[p_++].text;
        }
        return {};
    }
};

// Calls `field(name, value)` for each field of a header section, unfolded.
// A line that is neither a field nor its continuation is skipped.
template <class F>
void for_each_field(std::string_view header, F field) {
    std::string name;
    std::string value;
    bool open = false;  // a field is being read (continuation lines join it)
    auto flush = [&] {
        if (open) field(name, value);
        open = false;
    };
    std::size_t i = 0;
    while (i < header.size()) {
        std::size_t end = i;
        while (end < header.size() && header[end] != '\r' && header[end] != '\n') ++end;
        const std::string_view line = header.substr(i, end - i);
        // CRLF, bare CR or bare LF, as the relay writes line ends upstream.
        i = end + 1 < header.size() && header[end] == '\r' && header[end + 1] == '\n' ? end + 2 : end + 1;
        if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            if (open) value += line;  // unfolding: the line end goes, the white space stays
            continue;
        }
        flush();
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        // obs-optional: white space between the name and the colon.
        const auto n = text::trim(line.substr(0, colon));
        if (n.empty()) continue;
        name = std::string(n);
        value = std::string(line.substr(colon + 1));
        open = true;
    }
    flush();
}

}  // namespace

address_list_result parse_address_list(std::string_view value) {
    std::vector<token> tokens;
    if (auto why = tokenize(value, tokens); !why.empty()) return header_error{"", std::move(why)};
    std::vector<std::string> out;
    list_reader reader(std::move(tokens));
    if (auto why = reader.read(out); !why.empty()) return header_error{"", std::move(why)};
    return out;
}

namespace {

// The addresses of every field named in `names` (any case), in order; an
// error names the field as `names` spells it.
address_list_result addresses_in(std::string_view header_section, std::initializer_list<std::string_view> names) {
    std::vector<std::string> out;
    std::optional<header_error> error;
    for_each_field(header_section, [&](const std::string& name, const std::string& value) {
        if (error) return;
        const auto* wanted = std::find_if(names.begin(), names.end(),
                                          [&name](std::string_view n) { return text::iequals(name, n); });
        if (wanted == names.end()) return;
        auto parsed = parse_address_list(value);
        if (auto* e = std::get_if<header_error>(&parsed)) {
            error = header_error{std::string(*wanted), std::move(e->message)};
            return;
        }
        for (auto& a : std::get<std::vector<std::string>>(parsed)) out.push_back(std::move(a));
    });
    if (error) return *error;
    return out;
}

bool contains_address(const std::vector<std::string>& list, std::string_view address) {
    return std::any_of(list.begin(), list.end(), [address](const std::string& a) { return text::iequals(a, address); });
}

}  // namespace

address_list_result sender_addresses(std::string_view header_section) {
    return addresses_in(header_section, {"From", "Sender"});
}

address_list_result recipient_addresses(std::string_view header_section) {
    return addresses_in(header_section, {"To", "Cc", "Bcc"});
}

std::variant<header_recipients, header_error> compare_header_recipients(std::string_view header_section,
                                                                        const std::vector<std::string>& envelope) {
    auto in_header = recipient_addresses(header_section);
    if (auto* e = std::get_if<header_error>(&in_header)) return *e;
    const auto& listed = std::get<std::vector<std::string>>(in_header);
    header_recipients r;
    for (const auto& rcpt : envelope) {
        if (!contains_address(listed, rcpt) && !contains_address(r.missing, rcpt)) r.missing.push_back(rcpt);
    }
    for (const auto& a : listed) {
        if (!contains_address(envelope, a) && !contains_address(r.extra, a)) r.extra.push_back(a);
    }
    return r;
}

std::string bcc_field(const std::vector<std::string>& addresses) {
    std::string out = "Bcc:";
    std::size_t line = out.size();
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        const std::string piece = addresses[i] + (i + 1 < addresses.size() ? "," : "");
        if (line + 1 + piece.size() > 78 && line > 4) {
            out += "\r\n";  // folded: the next line begins with white space
            line = 0;
        }
        out += " " + piece;
        line += 1 + piece.size();
    }
    return out + "\r\n";
}

}  // namespace subrelay::smtp
