/**
 * Allow and deny lists, compiled once: inline ranges plus optional list files that are re-read when
 * they change. A deny entry always wins; when there is any allow entry, only allowed addresses pass.
 */
import { parseIp } from './ip-address.ts';
import type { IpListFile } from './ip-list-file.ts';
import { IpSet } from './ip-set.ts';

/** The lists as configured (inline entries and files), globally or on a route. */
export interface AccessConfig {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly allow_file?: string | undefined;
  readonly deny_file?: string | undefined;
}

/** Hands out list files shared by every snapshot that names them (see ProtectionState). */
export interface ListFiles {
  acquireFile(path: string): IpListFile;
  releaseFile(resolvedPath: string): void;
}

const scratch = new Uint32Array(4);

export class AccessRules {
  readonly #allow: IpSet | null;
  readonly #deny: IpSet | null;
  readonly #allowFile: IpListFile | null;
  readonly #denyFile: IpListFile | null;
  readonly #hasAllow: boolean;
  /** The files this holds, to give back when its snapshot is retired. */
  readonly files: readonly string[];

  constructor(config: AccessConfig, files: ListFiles, where: string) {
    this.#allow = config.allow.length > 0 ? IpSet.from(config.allow, (i) => `${where}.allow[${i}]`) : null;
    this.#deny = config.deny.length > 0 ? IpSet.from(config.deny, (i) => `${where}.deny[${i}]`) : null;
    this.#allowFile = config.allow_file === undefined ? null : files.acquireFile(config.allow_file);
    try {
      this.#denyFile = config.deny_file === undefined ? null : files.acquireFile(config.deny_file);
    } catch (error: unknown) {
      if (this.#allowFile !== null) files.releaseFile(this.#allowFile.path);
      throw error;
    }
    this.#hasAllow = this.#allow !== null || this.#allowFile !== null;
    this.files = [this.#allowFile, this.#denyFile].filter((f) => f !== null).map((f) => f.path);
  }

  /** True when the configuration says something (an empty `access: {}` is no rule). */
  static isEmpty(config: AccessConfig): boolean {
    return config.allow.length === 0 && config.deny.length === 0 && config.allow_file === undefined && config.deny_file === undefined;
  }

  /** Whether `address` may pass; an address that does not parse passes only when there is no allow list. */
  allows(address: string): boolean {
    const family = parseIp(address, scratch);
    if (this.#deny?.contains(family, scratch) === true) return false;
    if (this.#denyFile?.current.contains(family, scratch) === true) return false;
    if (!this.#hasAllow) return true;
    return this.#allow?.contains(family, scratch) === true || this.#allowFile?.current.contains(family, scratch) === true;
  }
}
