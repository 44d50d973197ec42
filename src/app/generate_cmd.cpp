// `generate --out FILE`: the deterministic synthetic capture and its truth.
#include <cstdio>
#include <fstream>

#include "ta/generate/generate.hpp"

#include "commands.hpp"

namespace ta::app {

void add_generate(CLI::App &app, GenerateArgs &args) {
  auto *cmd =
      app.add_subcommand("generate", "Write a deterministic synthetic capture (two clients) and "
                                     "its ground truth under both naming contracts");
  cmd->add_option("--out", args.out, "Capture file to write (pcap)")->required();
  cmd->add_option("--truth", args.truth, "Ground truth JSON (default: OUT.truth.json)");
  cmd->add_option("--packets", args.packets, "Frames in the capture")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 36U));
  cmd->add_option("--endpoints", args.endpoints, "Distinct hostnames")
      ->capture_default_str()
      ->check(CLI::Range(1U, 100000U));
  cmd->add_option("--seed", args.seed, "Seed: same seed, same bytes")->capture_default_str();
  cmd->add_option("--link", args.link, "Link type of the file: ethernet, sll, sll2, raw, null")
      ->capture_default_str()
      ->check(CLI::IsMember({"ethernet", "sll", "sll2", "raw", "null"}));
  cmd->add_flag("--dns-tcp", args.dns_over_tcp,
                "Every third re-resolution over TCP, the response split across two segments");
  cmd->add_flag("--fragments", args.fragments,
                "Every fourth IPv4 re-resolution's response in two IP fragments");
  cmd->add_option("--dns-table-size", args.dns_table_size,
                  "The truth as analyzed with this --dns-table-size (0: unbounded)")
      ->capture_default_str();
}

int run_generate(const GenerateArgs &args) {
  generate::Options opt;
  opt.packets = args.packets;
  opt.endpoints = args.endpoints;
  opt.seed = args.seed;
  opt.link = args.link == "sll"    ? 113U
             : args.link == "sll2" ? 276U
             : args.link == "raw"  ? 101U
             : args.link == "null" ? 0U
                                   : 1U;
  opt.dns_over_tcp = args.dns_over_tcp;
  opt.fragments = args.fragments;
  opt.dns_table_size = args.dns_table_size;
  auto written = generate::write_capture(opt, args.out);
  if (!written) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", written.status().message().c_str());
    return kExitFailure;
  }
  const generate::GroundTruth &truth = *written;
  const std::string truth_path = args.truth.empty() ? args.out + ".truth.json" : args.truth;
  std::ofstream out(truth_path);
  out << generate::truth_to_json(truth) << '\n';
  out.close();
  if (!out) {
    std::fprintf(stderr, "traffic-analyzer: %s: cannot write the ground truth\n",
                 truth_path.c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "wrote %s (%llu frames, %zu endpoints) and %s\n", args.out.c_str(),
               static_cast<unsigned long long>(truth.frames), truth.endpoints.size(),
               truth_path.c_str());
  return kExitOk;
}

} // namespace ta::app
