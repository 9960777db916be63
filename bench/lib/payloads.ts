// What the backend serves; shared by the backend and the harness's checks.
export const SMALL_PATH = '/small';
export const LARGE_PATH = '/large';
export const SMALL_BYTES = 100;
export const LARGE_BYTES = 1024 * 1024;
