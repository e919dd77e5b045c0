/** The path of the bundled loadable extension, for `db.loadExtension(path)`. */
export function getLoadablePath(): string;
