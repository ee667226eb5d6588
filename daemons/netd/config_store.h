// The configurations kept on the data disk: the confirmed one (router.conf, what a boot runs),
// a trial waiting for its confirm, and the history of confirmed ones. Every write is atomic
// and durable (atomic_file.h), and the order of the writes is chosen so that a power cut at any
// moment leaves a boot with a whole configuration, the old one or the new one:
//
//   apply:   pending.conf is written (the candidate and who applied it), then it runs;
//   confirm: router.conf is written (the commit point), then the history entry, then
//            pending.conf goes;
//   start:   a pending.conf left over means a trial the boot (or a netd restart) interrupted:
//            if router.conf already holds its text the confirm had reached its commit point
//            and is finished; otherwise the trial is dropped and router.conf, the last
//            confirmed configuration, is what runs.
//
// A file in the history is the configuration as it was applied, after a header of comment lines
// (so that `netd --check` reads every one as it is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "unique_fd.h"

namespace netd {

struct Revision {
    unsigned number = 0;
    int64_t time = 0;      // Unix seconds, when it was confirmed
    std::string who;       // the SSH key's comment, "console", or "file" for a reload
    std::string how;       // "apply", "rollback to 3", "reload", "first boot", ...
    std::string text;      // the configuration
};

struct Trial {
    std::string text;      // the candidate, running now
    std::string who, how;
    int64_t started = 0;   // Unix seconds
    unsigned timeout = 0;  // seconds to the confirm deadline
};

// "2026-11-24 20:01:02": a Unix time in UTC, as the history shows it.
std::string utc_time(int64_t t);

// Printable, one line, at most 80 characters: what may go into a header.
std::string header_safe(const std::string& s);

class ConfigStore {
public:
    static constexpr size_t kKeep = 20;   // confirmed configurations kept in the history

    // config_path: router.conf; dir: where history/ and pending.conf live (the state directory).
    ConfigStore(std::string config_path, std::string dir);

    // At netd's start: finishes or drops an interrupted trial, removes temporaries a power cut
    // left. Returns what it did, for the log ("" when there was nothing to do).
    std::string recover();

    std::optional<Trial> pending() const;
    Status begin(const Trial& t);
    // The trial kept: router.conf gets its text and the history a new revision.
    Result<unsigned> confirm(const Trial& t, int64_t now);
    // The trial dropped (its deadline passed, or cancel): router.conf was never touched.
    Status drop();
    // A configuration that became the running one without a trial (a reload of an edited
    // router.conf, the first boot): added to the history unless it is the newest entry already.
    Result<unsigned> record(const std::string& text, const std::string& who, const std::string& how, int64_t now);

    std::vector<Revision> history() const;                  // newest first
    std::optional<Revision> revision(unsigned n) const;
    const std::string& config_path() const { return config_path_; }
    std::string history_dir() const { return dir_ + "/history"; }

private:
    std::string pending_path() const { return dir_ + "/pending.conf"; }
    std::string revision_path(unsigned n) const;
    Result<unsigned> add(const std::string& text, const std::string& who, const std::string& how, int64_t now);

    std::string config_path_;
    std::string dir_;
};

// A unified diff of two texts by lines (context 3), with the labels in its --- and +++ lines;
// "" when they are equal.
std::string unified_diff(const std::string& a, const std::string& b, const std::string& label_a,
                         const std::string& label_b);

}  // namespace netd
