// Who takes part in a round, and the seed mixing every per-(party, round) draw uses. Both are
// functions of numbers every rank knows, so every rank draws the same.
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

// Derives a 64-bit seed from several numbers (splitmix64 mixing), e.g. (seed, party, round).
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0);

}  // namespace fedgan::federated
