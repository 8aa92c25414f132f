#pragma once
// The durable queue. A message is one file: an envelope header, a blank
// line, then the message bytes. It is written to tmp/, fsynced, renamed
// into queue/ and the directory fsynced before anyone is told "250".
// A message from a client is written as it arrives (spool::incoming), so
// the relay never holds a whole message in memory to store it.
//
// The process that opens the spool (the relay) owns tmp/: it recycles the
// files of delivered messages there (emptied at once: delivered mail does
// not stay on disk) and writes new messages into them, so a busy relay does
// not allocate and free an inode per message. Whatever is in tmp/ at
// start-up was never acknowledged and is removed. The spool's directories
// are private: made with mode 0700, refused when others may write to them.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
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
    spool_error(const std::string& what, int error_number) : std::runtime_error(what), errno_(error_number) {}
    // The errno of the failed call, when one failed (else 0).
    [[nodiscard]] int error_number() const { return errno_; }
    // The file system is full (or the quota is used up): a 452 4.3.1, not a 451.
    [[nodiscard]] bool out_of_space() const;

private:
    int errno_ = 0;
};

// Runs f(): the shared file helpers (durable_file.hpp) throw
// std::runtime_error, the spool's callers expect spool_error.
template <typename F>
void as_spool_error(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const spool_error&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw spool_error(e.what());
    }
}

class spool {
public:
    explicit spool(std::filesystem::path dir);

    // Takes the spool for this process: creates dir/, dir/tmp and dir/queue
    // as needed, locks dir/serve.lock for this object's life (a second relay
    // on the same spool would deliver the same queue twice and empty tmp/
    // under the first one's feet: "spool DIR is in use by process PID"),
    // removes leftovers in tmp/ (never acknowledged), queues the imports
    // from another spool that were interrupted after their receipt
    // (relay/spool/import.hpp), and proves the directory writable by
    // writing, fsyncing and removing a probe file. From then on this object
    // recycles the files it removes. Throws spool_error.
    void open();

    using header_builder = std::function<std::string(const std::string& id)>;

    // A message being written as it arrives. Every step may block (writes,
    // fsync): run them off the I/O thread. Each throws spool_error, and a
    // message whose step failed is gone: nothing of it stays in tmp/ or
    // queue/. Not thread-safe: one writer at a time.
    class incoming {
    public:
        incoming() = default;
        incoming(incoming&& other) noexcept;
        incoming& operator=(incoming&& other) noexcept;  // aborts what this one held
        incoming(const incoming&) = delete;
        incoming& operator=(const incoming&) = delete;
        ~incoming() { abort(); }

        // Between begin() and commit() or abort().
        [[nodiscard]] bool active() const { return owner_ != nullptr; }
        [[nodiscard]] const std::string& id() const { return id_; }
        // Message bytes appended (the envelope and the header not counted).
        [[nodiscard]] std::uint64_t size() const { return size_; }

        // Adds message bytes (one write; callers batch them).
        void append(std::string_view bytes);
        // Makes the message durable and queues it: fdatasync, rename into
        // queue/, fsync of queue/ (shared with concurrent writers). Returns the queue id. Afterwards !active().
        std::string commit();
        // Drops the message: a file made for it is removed, a recycled one
        // emptied and kept for the next message. Afterwards !active().
        void abort() noexcept;

    private:
        friend class spool;
        spool* owner_ = nullptr;
        fd_guard fd_{-1};
        std::string id_;
        std::string name_;                // its name in tmp/
        std::filesystem::path tmp_path_;
        bool reused_ = false;             // a recycled file (kept empty): emptied again by abort()
        std::uint64_t written_ = 0;       // bytes in the file: envelope, header, message
        std::uint64_t size_ = 0;
        void write(std::string_view bytes);
        [[noreturn]] void fail(std::string_view what, int err);
    };

    // Starts a message: chooses its id, takes a file in tmp/ (a recycled
    // one when there is one) and writes the envelope and make_header(id)
    // (the lines to prepend: a Received: header), then the caller appends
    // the message and commits. Throws spool_error, leaving no file behind.
    incoming begin(spool_envelope env, const header_builder& make_header = {});

    // Stores a whole message durably (begin, append, commit): notices,
    // bounces, tools. Returns its queue id. Throws spool_error and leaves no
    // file behind when any step fails.
    std::string store(spool_envelope env, std::string_view body, const header_builder& make_header = {});

    // Queue ids of all stored messages, oldest first.
    [[nodiscard]] std::vector<std::string> list() const;

    // A queued message opened for delivery: its envelope and the first
    // bytes of the message are read at once, the rest as it is sent, so a
    // delivery holds a bounded part of a message in memory, never all of it.
    // The file stays open until close() or destruction; close it before the
    // message is removed (its file may be reused for the next message).
    class stored_message {
    public:
        spool_envelope envelope;
        // Message bytes (the envelope not counted).
        [[nodiscard]] std::uint64_t size() const { return size_; }
        // The message's first bytes: the whole message when it is small
        // (head_bytes or less), else at least head_bytes and on to the end
        // of the header section, but at most about max_head_bytes.
        [[nodiscard]] const std::string& head() const { return head_; }
        [[nodiscard]] bool whole() const { return head_.size() == size_; }
        // Reads up to buf.size() message bytes from `offset` (pread: callers
        // share no file position). Returns the count, 0 at the end. Blocking.
        // Throws spool_error.
        std::size_t read_at(std::uint64_t offset, std::span<char> buf) const;
        void close() { fd_ = fd_guard(-1); }

    private:
        friend class spool;
        fd_guard fd_{-1};
        std::string path_;
        std::uint64_t start_ = 0;  // where the message starts in the file
        std::uint64_t size_ = 0;
        std::string head_;
    };
    static constexpr std::size_t head_bytes = 64 * 1024;
    static constexpr std::size_t max_head_bytes = 1024 * 1024;
    // Opens one message. Blocking. Throws spool_error.
    [[nodiscard]] stored_message open_message(const std::string& id) const;

    // Reads one whole message: its envelope, and the message bytes (for tools
    // and notices; the delivery uses open_message). Throws spool_error.
    struct loaded {
        spool_envelope envelope;
        std::string data;
    };
    [[nodiscard]] loaded load(const std::string& id) const;
    // Reads only the envelope of one message (the scheduler's start-up
    // survey and queue commands need no message bytes). Throws spool_error.
    [[nodiscard]] spool_envelope load_envelope(const std::string& id) const;

    // Removes a delivered (or permanently failed) message, durably: the
    // queue directory is fsynced (together with concurrent stores). After
    // open(), a small file is kept in tmp/ for a later store.
    void remove(const std::string& id);

    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

    // What open() found of imports interrupted after their receipt: the
    // messages it queued, and those it could not (for the log).
    [[nodiscard]] const std::vector<std::string>& imports_finished() const { return imports_finished_; }
    [[nodiscard]] const std::vector<std::string>& import_problems() const { return import_problems_; }

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
    std::vector<std::string> imports_finished_;
    std::vector<std::string> import_problems_;
    std::mutex recycled_mutex_;
    bool recycling_ = false;              // set by open()
    std::deque<std::string> recycled_;    // names in tmp/, oldest first
    std::uint64_t recycled_counter_ = 0;
    std::string take_recycled();
    void return_recycled(std::string name);
    bool recycle(const std::filesystem::path& file);
};

// Takes dir/serve.lock (created as needed, mode 0600) for the life of the
// returned descriptor and writes this process's id into it: the lock that
// keeps one relay per spool, and an import away from a spool another relay
// still serves. Throws spool_error, "spool DIR is in use by process PID"
// when another process holds it.
fd_guard lock_spool_dir(const std::filesystem::path& dir);

// Serialisation of the envelope header (exposed for tests).
std::string format_envelope(const spool_envelope& env);
// Parses a spool file's content; returns the envelope and the offset of the message.
std::optional<std::pair<spool_envelope, std::size_t>> parse_envelope(std::string_view file);

}  // namespace subrelay::relay
