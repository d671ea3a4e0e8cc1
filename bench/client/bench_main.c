/* bench/client/bench_main: the ringmail-bench executable, which
 * `ringmail bench` (app/cmd_bench.c) runs with its own arguments. */
#include "bench/client/bench_client.h"

int main(int argc, char **argv)
{
	return bench_cmd_run(argc, argv);
}
