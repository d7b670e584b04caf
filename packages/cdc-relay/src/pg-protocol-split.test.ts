/**
 * patches/pg-protocol@1.16.1.patch completes a message split across two socket
 * reads with only the bytes it lacks. Every byte the relay streams goes through
 * that parser, so its framing is checked here against the messages the stream
 * was built from, over random chunkings: splits inside the 5-byte header,
 * inside the body, at message ends, and chunks holding many messages.
 */
import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

// pg-protocol is pg's; resolve it where pg does, so the patched copy is the one tested.
const fromPg = createRequire(createRequire(import.meta.url).resolve('pg'));
const { Parser } = fromPg('pg-protocol/dist/parser.js') as {
  Parser: new () => {
    parse(chunk: Buffer, callback: (message: ParsedMessage) => void): void;
    copyData?: (bytes: Buffer, start: number, end: number) => void;
  };
};
const { parse } = fromPg('pg-protocol') as { parse(stream: NodeJS.EventEmitter, callback: () => void): Promise<void> };
interface ParsedMessage {
  name: string;
  chunk?: Buffer;
  text?: string;
}

function copyData(bodyBytes: number): Buffer {
  const b = Buffer.alloc(5 + bodyBytes);
  b[0] = 0x64; // 'd'
  b.writeUInt32BE(4 + bodyBytes, 1);
  randomFillSync(b, 5);
  return b;
}

function commandComplete(text: string): Buffer {
  const s = Buffer.from(`${text}\0`);
  const header = Buffer.alloc(5);
  header[0] = 0x43; // 'C'
  header.writeUInt32BE(4 + s.length, 1);
  return Buffer.concat([header, s]);
}

const describe = (m: ParsedMessage) =>
  m.name === 'copyData' ? `d${(m.chunk as Buffer).toString('hex')}` : `${m.name}:${m.text}`;

/** A stream of CopyData messages of random sizes with a CommandComplete every 17th, and how each is described. */
function randomStream(sizes: number[]): { stream: Buffer; expected: string[] } {
  const parts: Buffer[] = [];
  const expected: string[] = [];
  for (let i = 0; i < 80; i++) {
    if (i % 17 === 0) {
      parts.push(commandComplete(`INSERT 0 ${i}`));
      expected.push(`commandComplete:INSERT 0 ${i}`);
    } else {
      const part = copyData(sizes[Math.floor(Math.random() * sizes.length)] as number);
      parts.push(part);
      expected.push(`d${part.subarray(5).toString('hex')}`);
    }
  }
  return { stream: Buffer.concat(parts), expected };
}

/**
 * Each of 40 random streams fed to a new parser in random chunks, each read a buffer of its own
 * as a socket gives them; the messages are described at once, as the relay's decoder reads a
 * message before the next read. `inPlace`: with parser.copyData set.
 */
function checkRandomChunkings(inPlace: boolean): void {
  const sizes = [0, 1, 3, 100, 1_000, 5_000, 70_000];
  const maxChunk = [3, 50, 2_000, 65_536];
  for (let round = 0; round < 40; round++) {
    const { stream, expected } = randomStream(sizes);
    const parser = new Parser();
    const got: string[] = [];
    if (inPlace) parser.copyData = (bytes, start, end) => got.push(`d${bytes.subarray(start, end).toString('hex')}`);
    const limit = maxChunk[round % maxChunk.length] as number;
    for (let at = 0; at < stream.length; ) {
      const n = 1 + Math.floor(Math.random() * limit);
      parser.parse(Buffer.from(stream.subarray(at, at + n)), (m) => {
        if (inPlace)
          assert.is.not(m.name, 'copyData', 'a CopyData message went to the callback while copyData was set');
        got.push(describe(m));
      });
      at += n;
    }
    assert.is(got.length, expected.length, `round ${round}: message count`);
    const first = got.findIndex((g, i) => g !== expected[i]);
    assert.is(first, -1, `round ${round}: message ${first} differs`);
  }
}

test('random chunkings give back exactly the messages the stream was built from', () => {
  checkRandomChunkings(false);
});

test('parser.copyData takes each CopyData message in place, exactly its bytes, over random chunkings', () => {
  checkRandomChunkings(true);
});

test("pg-protocol's parse(stream) leaves its parser on the stream, where pg-logical-replication sets copyData", () => {
  const stream = new EventEmitter();
  void parse(stream, () => {});
  const parser = (stream as unknown as Record<symbol, unknown>)[Symbol.for('pg-protocol.parser')];
  assert.ok(parser instanceof Parser);
  assert.ok('copyData' in parser);
});

test.run();
