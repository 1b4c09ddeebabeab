// A small strict JSON parser for safetensors headers and index files. JSON.parse keeps the last of
// duplicate keys silently; a header that names a tensor twice must be rejected, so we parse ourselves.
// Numbers keep their source text so callers can tell `2` from `2.0` or `2e0`.

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** Null-prototype object: keys like `__proto__` are plain keys. */
export type JsonObject = { [key: string]: JsonValue };

export class JsonNumber {
  constructor(readonly text: string) {}
  get value(): number {
    return Number(this.text);
  }
  /** True for a plain non-negative integer literal (no sign, fraction or exponent) that is a safe integer. */
  isSafeNonNegativeInteger(): boolean {
    return /^(0|[1-9][0-9]*)$/.test(this.text) && Number.isSafeInteger(this.value);
  }
}

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at character ${position}`);
  }
}

/** A key that appears twice in one object; `path` is the keys of the objects that enclose it. */
export class JsonDuplicateKeyError extends Error {
  constructor(
    readonly path: string[],
    readonly key: string,
  ) {
    super(`duplicate key '${key}'${path.length ? ` in '${path.join('.')}'` : ''}`);
  }
}

const MAX_DEPTH = 64;

export function parseStrictJson(text: string): JsonValue {
  let pos = 0;
  const path: string[] = [];

  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, pos);
  };

  const skipWhitespace = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };

  const parseString = (): string => {
    pos++; // opening quote
    let result = '';
    let chunkStart = pos;
    while (true) {
      if (pos >= text.length) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        result += text.slice(chunkStart, pos);
        pos++;
        return result;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      result += text.slice(chunkStart, pos);
      const escaped = text[pos + 1];
      pos += 2;
      switch (escaped) {
        case '"':
          result += '"';
          break;
        case '\\':
          result += '\\';
          break;
        case '/':
          result += '/';
          break;
        case 'b':
          result += '\b';
          break;
        case 'f':
          result += '\f';
          break;
        case 'n':
          result += '\n';
          break;
        case 'r':
          result += '\r';
          break;
        case 't':
          result += '\t';
          break;
        case 'u': {
          const hex = text.slice(pos, pos + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          result += String.fromCharCode(Number.parseInt(hex, 16));
          pos += 4;
          break;
        }
        default:
          pos -= 2;
          fail('bad escape');
      }
      chunkStart = pos;
    }
  };

  const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
  const parseNumber = (): JsonNumber => {
    NUMBER.lastIndex = pos;
    const match = NUMBER.exec(text);
    if (!match || match[0] === '-' || match[0] === '') fail('bad number');
    pos += match![0].length;
    return new JsonNumber(match![0]);
  };

  const parseLiteral = <T extends JsonValue>(word: string, value: T): T => {
    if (!text.startsWith(word, pos)) fail('unexpected token');
    pos += word.length;
    return value;
  };

  const parseValue = (): JsonValue => {
    skipWhitespace();
    if (pos >= text.length) fail('unexpected end of input');
    const c = text[pos];
    if (c === '{') return parseObject();
    if (c === '[') return parseArray();
    if (c === '"') return parseString();
    if (c === 't') return parseLiteral('true', true);
    if (c === 'f') return parseLiteral('false', false);
    if (c === 'n') return parseLiteral('null', null);
    if (c === '-' || (c >= '0' && c <= '9')) return parseNumber();
    return fail('unexpected token');
  };

  const parseArray = (): JsonValue[] => {
    if (path.length >= MAX_DEPTH) fail('nesting too deep');
    pos++;
    path.push('[]');
    const items: JsonValue[] = [];
    skipWhitespace();
    if (text[pos] === ']') {
      pos++;
      path.pop();
      return items;
    }
    while (true) {
      items.push(parseValue());
      skipWhitespace();
      const c = text[pos++];
      if (c === ']') break;
      if (c !== ',') {
        pos--;
        fail("expected ',' or ']'");
      }
    }
    path.pop();
    return items;
  };

  const parseObject = (): JsonObject => {
    if (path.length >= MAX_DEPTH) fail('nesting too deep');
    pos++;
    const object: JsonObject = Object.create(null);
    skipWhitespace();
    if (text[pos] === '}') {
      pos++;
      return object;
    }
    while (true) {
      skipWhitespace();
      if (text[pos] !== '"') fail('expected a string key');
      const key = parseString();
      if (Object.hasOwn(object, key)) throw new JsonDuplicateKeyError([...path], key);
      skipWhitespace();
      if (text[pos] !== ':') fail("expected ':'");
      pos++;
      path.push(key);
      object[key] = parseValue();
      path.pop();
      skipWhitespace();
      const c = text[pos++];
      if (c === '}') break;
      if (c !== ',') {
        pos--;
        fail("expected ',' or '}'");
      }
    }
    return object;
  };

  const value = parseValue();
  skipWhitespace();
  if (pos !== text.length) fail('unexpected data after the JSON value');
  return value;
}

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)
  );
}
