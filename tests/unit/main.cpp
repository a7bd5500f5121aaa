// Catch2 v2 main for the serial unit tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
