// Every key under a checkpoint's /state (docs/DESIGN.md, "Checkpoint"), defined in this one
// place and used by each writer and reader: the server step's state, each party's own state
// and DP-FedAvg's account. A new piece of state adds its key here.
#pragma once

#include <string>

namespace fedgan::io::keys {

// --- top level of /state ---------------------------------------------------------------------
inline constexpr const char* kServer = "server/";    // server/<what>: the round's server state
inline constexpr const char* kParty = "party/";      // party/<id>/<what>: each party's own state
inline constexpr const char* kPrivacy = "privacy/";  // privacy/<what>: DP-FedAvg's account

// --- within the server state (after "server/") -------------------------------------------------
inline constexpr const char* kServerG = "g/";  // G's server optimizer: g/<what>
inline constexpr const char* kServerD = "d/";  // D's: d/<what>
// With a generator EMA: the trained generator's flat values (/generator then holds the EMA).
inline constexpr const char* kGRaw = "g_raw";
// Kernel modulation (--modulation-rank): the filters whose modulation trains, int64 [F] of 0/1.
inline constexpr const char* kModulationMask = "modulation_mask";
inline constexpr const char* kAdaP = "ada_p";           // ADA's augmentation probability, float64 [1]
inline constexpr const char* kScaffold = "scaffold/";   // SCAFFOLD's server variates: scaffold/c_g, c_d
inline constexpr const char* kScaffoldCG = "c_g";
inline constexpr const char* kScaffoldCD = "c_d";
// Pacing (--party-speed, --round-time-budget, --async-buffer): the simulated clock's total,
// float64 [1], and each party's last measured seconds per step, float64 [P].
inline constexpr const char* kSimTime = "pacing/sim_time";
inline constexpr const char* kMeasuredStep = "pacing/measured_step";
// Asynchronous aggregation: the model versions parties in flight train from,
// async/version/<v>/g and /d (float32 flat G and D; the schedule is replayed from the settings).
inline constexpr const char* kAsyncVersion = "async/version/";
inline std::string async_version(long long version, const char* model) {
  return std::string(kAsyncVersion) + std::to_string(version) + "/" + model;
}
// The federation controller (--auto): its rules' state (federated/adapt/controller.cpp):
// settings float64 [3], excluded_until int64 [P], counters int64 [5], best_fid float64 [2].
inline constexpr const char* kControllerSettings = "controller/settings";
inline constexpr const char* kControllerExcluded = "controller/excluded_until";
inline constexpr const char* kControllerCounters = "controller/counters";
inline constexpr const char* kControllerBestFid = "controller/best_fid";

// Federated distillation (--federation distill): the global generator's Adam state,
// distill_g/exp_avg, exp_avg_sq (float32) and step (int64 [1]).
inline constexpr const char* kDistillG = "distill_g/";

// --- within a party's state (after party_prefix(id)) ----------------------------------------
inline constexpr const char* kGExpAvg = "g_exp_avg";  // Adam moments (--optimizer-state keep)
inline constexpr const char* kGExpAvgSq = "g_exp_avg_sq";
inline constexpr const char* kGStep = "g_step";
inline constexpr const char* kDExpAvg = "d_exp_avg";
inline constexpr const char* kDExpAvgSq = "d_exp_avg_sq";
inline constexpr const char* kDStep = "d_step";
inline constexpr const char* kGBuffers = "g_buffers";  // BatchNorm statistics (--local-bn)
inline constexpr const char* kDBuffers = "d_buffers";
inline constexpr const char* kPartyScaffoldCG = "scaffold_c_g";  // SCAFFOLD's party variates
inline constexpr const char* kPartyScaffoldCD = "scaffold_c_d";
// Federated distillation: the party's own discriminator, distill_d/values (its flat parameters
// and float buffers) and its Adam state distill_d/exp_avg, exp_avg_sq, step.
inline constexpr const char* kDistillD = "distill_d/";
inline constexpr const char* kDistillValues = "values";
inline constexpr const char* kDistillExpAvg = "exp_avg";  // (also under kDistillG)
inline constexpr const char* kDistillExpAvgSq = "exp_avg_sq";
inline constexpr const char* kDistillStep = "step";

// --- DP-FedAvg's account (full keys) -----------------------------------------------------------
inline constexpr const char* kPrivacyOrders = "privacy/orders";
// The RDP vector: the one state entry that may hold +inf (the account after rounds without
// noise); read_checkpoint allows it.
inline constexpr const char* kPrivacyRdp = "privacy/rdp";
inline constexpr const char* kPrivacyClip = "privacy/clip";
inline constexpr const char* kPrivacyRounds = "privacy/rounds";

// "party/<id>/"
inline std::string party_prefix(int party) {
  return std::string(kParty) + std::to_string(party) + "/";
}

}  // namespace fedgan::io::keys
