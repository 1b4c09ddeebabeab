// Ctrl-C / SIGTERM handling for the long-running commands: the first signal runs the command's
// orderly shutdown once; a second one exits at once for an impatient user.
export function onShutdown(stop: (signal: NodeJS.Signals) => Promise<number>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`\n${signal} again: exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    stop(signal).then(
      (code) => process.exit(code),
      (error) => {
        process.stderr.write(`shutdown failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
