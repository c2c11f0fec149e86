#include "agent/cli.h"

int main(int argc, char** argv) { return kernelet::agent::runCli(argc, argv); }
