// Who takes part in a round: a function of numbers every rank knows (seeds mixed by
// data::derive_seed), so every rank draws the same.
#pragma once

#include <cstdint>
#include <vector>

namespace fedgan::federated {

// Same seeded draw on every rank: ceil(fraction * total) distinct parties, sorted.
std::vector<int> sample_participants(int total_parties, double fraction, std::uint64_t seed,
                                     int round);

// Poisson sampling (client-level DP): party k joins round t with probability q, independently
// of the others, as the RDP accountant assumes; one seeded generator per round, read in party
// order, so every rank draws the same set. Sorted ids; may be empty.
std::vector<int> poisson_participants(int total_parties, double q, std::uint64_t seed, int round);

}  // namespace fedgan::federated
