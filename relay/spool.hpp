#pragma once
// The durable queue. A message is one file: an envelope header, a blank
// line, then the message bytes. It is written to tmp/, fsynced, renamed
// into queue/ and the directory fsynced before anyone is told "250".
//
// The process that opens the spool (the relay) owns tmp/: it recycles the
// files of delivered messages there and writes new messages into them, so
// a busy relay does not allocate and free an inode per message. Whatever
// is in tmp/ at start-up was never acknowledged and is removed.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "relay/spool/durable_file.hpp"

namespace subrelay::relay {

struct spool_envelope {
    std::string id;
    std::string sender;                   // "" for <>
    std::vector<std::string> recipients;  // still to deliver
    std::string identity;                 // the local account that submitted it
    std::string upstream_mailbox;         // through which upstream mailbox it goes
    std::string client_address;
    std::int64_t received_at = 0;         // unix seconds
    bool smtputf8 = false;
    bool eight_bit = false;
};

class spool_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class spool {
public:
    explicit spool(std::filesystem::path dir);

    // Takes the spool for this process: creates dir/, dir/tmp and dir/queue
    // as needed, locks dir/serve.lock for this object's life (a second relay
    // on the same spool would deliver the same queue twice and empty tmp/
    // under the first one's feet: "spool DIR is in use by process PID"),
    // removes leftovers in tmp/ (never acknowledged), and proves the directory
    // writable by writing, fsyncing and removing a probe file. From then on
    // this object recycles the files it removes. Throws spool_error.
    void open();

    // Stores a message durably. Returns its queue id. make_header, when
    // given, builds the lines to prepend (a Received: header) from the id.
    // Throws spool_error and leaves no file behind when any step fails.
    using header_builder = std::function<std::string(const std::string& id)>;
    std::string store(spool_envelope env, std::string_view body, const header_builder& make_header = {});

    // Queue ids of all stored messages, oldest first.
    [[nodiscard]] std::vector<std::string> list() const;

    // Reads one message: its envelope, and the message bytes. Throws spool_error.
    struct loaded {
        spool_envelope envelope;
        std::string data;
    };
    [[nodiscard]] loaded load(const std::string& id) const;

    // Removes a delivered (or permanently failed) message, durably: the
    // queue directory is fsynced (together with concurrent stores). After
    // open(), a small file is kept in tmp/ for a later store.
    void remove(const std::string& id);

    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

    // Bytes available to us on the spool's file system (statvfs f_bavail),
    // or nullopt when it cannot be told.
    [[nodiscard]] std::optional<std::uint64_t> free_bytes() const;

    // A new queue id: sortable by time, unique in this spool.
    static std::string new_id();

    // Files kept for reuse: at most this many, each at most this large.
    static constexpr std::size_t max_recycled_files = 256;
    static constexpr std::uintmax_t max_recycled_size = 64 * 1024;

private:
    std::filesystem::path dir_;
    std::filesystem::path tmp_;
    std::filesystem::path queue_;
    directory_syncer queue_sync_;
    fd_guard instance_lock_{-1};          // dir/serve.lock, flocked by open()
    void lock_instance();
    std::mutex recycled_mutex_;
    bool recycling_ = false;              // set by open()
    std::deque<std::string> recycled_;    // names in tmp/, oldest first
    std::uint64_t recycled_counter_ = 0;
    std::string take_recycled();
    void return_recycled(std::string name);
    bool recycle(const std::filesystem::path& file);
    void write_durably(const std::filesystem::path& final_path, const std::string& id, std::string_view head,
                       std::string_view body);
};

// Serialisation of the envelope header (exposed for tests).
std::string format_envelope(const spool_envelope& env);
// Parses a spool file's content; returns the envelope and the offset of the message.
std::optional<std::pair<spool_envelope, std::size_t>> parse_envelope(std::string_view file);

}  // namespace subrelay::relay
