/** The lines of a file with their numbers and byte offsets, so an import can resume mid-file. */
import { createReadStream } from 'node:fs';

export interface Line {
  /** 1-based line number in the file. */
  number: number;
  /** The text without its line break (LF or CRLF). */
  text: string;
  /** Byte offset just past this line's break: where the next line starts. */
  end: number;
}

export async function* readLines(path: string, from = { offset: 0, line: 0 }): AsyncGenerator<Line> {
  let number = from.line;
  let offset = from.offset;
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { start: from.offset, highWaterMark: 1 << 20 })) {
    let buffer = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let at = buffer.indexOf(0x0a);
    while (at >= 0) {
      const raw = buffer.subarray(0, at);
      offset += at + 1;
      number++;
      const text = raw.toString('utf8');
      yield { number, text: text.endsWith('\r') ? text.slice(0, -1) : text, end: offset };
      buffer = buffer.subarray(at + 1);
      at = buffer.indexOf(0x0a);
    }
    rest = Buffer.from(buffer);
  }
  if (rest.length > 0) {
    const text = rest.toString('utf8');
    yield {
      number: number + 1,
      text: text.endsWith('\r') ? text.slice(0, -1) : text,
      end: offset + rest.length,
    };
  }
}
