// `mope-clip serve DIR [DIR2]`: serves the zero-shot browser page (web/), onnxruntime-web's wasm files and one or two
// exported model folders (dense vs pruned side by side) on the loopback interface until interrupted.
import type { Command } from 'commander';
import { parseNonNegativeInt } from './common.ts';
import { startServer } from '../deploy/server.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('serve')
    .description(
      'Serve the browser zero-shot page for one or two folders written by `mope-clip export` (shown side by side). ' +
        'The page runs onnx/model.onnx with onnxruntime-web (wasm). Prints the URL; stops on Ctrl-C.',
    )
    .argument('<dir>', 'exported model folder (e.g. the dense model)')
    .argument('[dir2]', 'a second exported folder (e.g. the pruned model)')
    .option('--port <n>', 'TCP port (0 = any free port)', '8080')
    .option(
      '--host <addr>',
      'interface to bind; anything but loopback exposes the page and models to the network',
      '127.0.0.1',
    )
    .option('--quiet', 'do not log requests')
    .action(async (dir: string, dir2: string | undefined, o) => {
      const models = dir2 ? [dir, dir2] : [dir];
      const srv = await startServer({
        models,
        host: o.host,
        port: parseNonNegativeInt(o.port, '--port', 65535),
        log: o.quiet ? undefined : (l) => io.err.write(l + '\n'),
      });
      if (!['127.0.0.1', '::1', 'localhost'].includes(o.host)) {
        io.err.write(
          `warning: listening on ${o.host}, not only loopback: anyone who can reach this machine can load the page and the models\n`,
        );
      }
      io.out.write(`serving ${models.join(' and ')} at ${srv.url}  (Ctrl-C to stop)\n`);
      await new Promise<void>((done) => {
        const stop = () => {
          void srv.close().then(done);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
