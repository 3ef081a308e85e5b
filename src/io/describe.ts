/** A short, safe rendering of any value for an error message (it may come from a hostile file). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    case 'object':
      return Array.isArray(value) ? shortJson(value) : 'an object';
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      return typeof value;
  }
}

function shortJson(array: unknown[]): string {
  let text: string;
  try {
    text = JSON.stringify(array);
  } catch {
    return 'an array'; // cyclic, or holding a bigint
  }
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
