// Not the package's index, which also loads its decoderbufs plugin with protobufjs (see replication-session.ts).
import { PgoutputPlugin } from 'pg-logical-replication/dist/output-plugins/pgoutput/pgoutput-plugin.js';
import { PgoutputDecoder } from './pgoutput.ts';

/**
 * pg-logical-replication drives the slot (START_REPLICATION, flow control,
 * keepalives); the messages themselves are decoded by pgoutput.ts, whose
 * relation cache lives as long as this plugin, i.e. one replication session.
 */
export class DecodingPgoutputPlugin extends PgoutputPlugin {
  private readonly decoder = new PgoutputDecoder();

  constructor(
    options: ConstructorParameters<typeof PgoutputPlugin>[0],
    /** Called as each data message arrives, before flow control may hold it back. */
    private readonly onDataMessage: () => void,
  ) {
    super(options);
  }

  // The library's types say its own message union; the relay's handler takes this one.
  override parse(buffer: Buffer): never {
    return this.parseAt(buffer, 0, buffer.length);
  }

  /** The message `buffer[start, end)`, past an XLogData header (the pnpm patch of pg-logical-replication calls it), decoded in place. */
  parseAt(buffer: Buffer, start: number, end: number): never {
    this.onDataMessage();
    return this.decoder.decode(buffer, start, end) as never;
  }
}
