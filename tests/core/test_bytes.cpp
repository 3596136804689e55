#include "catch.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"

using namespace tidemark;

TEST_CASE("parse_bytes understands IEC and SI units", "[core]") {
  CHECK(parse_bytes("600MiB") == 600ull * 1024 * 1024);
  CHECK(parse_bytes("1.5GiB") == 1610612736ull);
  CHECK(parse_bytes("2GB") == 2000000000ull);
  CHECK(parse_bytes("4KiB") == 4096);
  CHECK(parse_bytes("512") == 512);
  CHECK(parse_bytes(" 7 B ") == 7);
}

TEST_CASE("parse_bytes refuses garbage with a message naming it", "[core]") {
  CHECK_THROWS_AS(parse_bytes("abc"), UserError);
  CHECK_THROWS_AS(parse_bytes("-5MiB"), UserError);
  CHECK_THROWS_AS(parse_bytes("5 parsecs"), UserError);
  CHECK_THROWS_AS(parse_bytes(""), UserError);
  try {
    parse_bytes("12XB", "--budget");
    FAIL("no throw");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("--budget") != std::string::npos);
    CHECK(std::string(e.what()).find("XB") != std::string::npos);
  }
}

TEST_CASE("budgets are bytes with a unit or a fraction of the peak", "[core]") {
  Budget b = Budget::parse("0.5");
  CHECK(b.is_fraction());
  CHECK(b.resolve(1000) == 500);
  Budget c = Budget::parse("600MiB");
  CHECK_FALSE(c.is_fraction());
  CHECK(c.resolve(1) == 600ull << 20);
  CHECK(Budget::parse("1").is_fraction());
  CHECK_THROWS_AS(Budget::parse("1.5"), UserError);
  CHECK_THROWS_AS(Budget::parse("0"), UserError);
  CHECK_THROWS_AS(Budget::parse("nan"), UserError);
  CHECK_THROWS_AS(Budget::parse("0MiB"), UserError);
  CHECK_THROWS_AS(Budget::parse("fast"), UserError);
  CHECK(Budget::fraction(0.25).resolve(1000) == 250);
  CHECK(Budget::bytes(4096).resolve(1) == 4096);
  CHECK_THROWS_AS(Budget::fraction(0), UserError);
  CHECK_THROWS_AS(Budget::fraction(1.5), UserError);
  CHECK_THROWS_AS(Budget::bytes(0), UserError);
}

TEST_CASE("format_bytes picks a binary unit", "[core]") {
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(600ull << 20) == "600.0 MiB");
  CHECK(format_bytes_signed(-2048) == "-2.0 KiB");
}
