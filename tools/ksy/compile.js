#!/usr/bin/env node
// Compile a Kaitai Struct description (.ksy) with the JS build of the reference compiler.
//
//   npm install --prefix tools/ksy                     # once: kaitai-struct-compiler, js-yaml
//   node tools/ksy/compile.js spec/m3v.ksy OUTDIR      # Python (the default target)
//   node tools/ksy/compile.js -t javascript spec/m3v.ksy OUTDIR
//   node tools/ksy/compile.js --version                # compiler version, one line
//
// Writes every file the compiler produces into OUTDIR (created if needed) and prints
// their paths, one a line.  Exit status 1 on a compile error (message on stderr),
// 2 on bad usage.  Relative `meta/imports` are resolved beside the importing .ksy.
"use strict";

const fs = require("fs");
const path = require("path");

function usage(message) {
  if (message) process.stderr.write(`compile.js: ${message}\n`);
  process.stderr.write(
    "usage: node compile.js [-t|--target LANG] [--debug] INPUT.ksy OUTDIR\n" +
      "       node compile.js --version\n"
  );
  process.exit(2);
}

function errorText(err) {
  // The compiler is Scala.js: its exceptions may be plain JS errors, Scala throwables
  // (getMessage) or lists of problems; say as much as we can.
  if (err === null || err === undefined) return "unknown error";
  if (Array.isArray(err)) return err.map(errorText).join("\n");
  if (typeof err.getMessage === "function") {
    try {
      const m = err.getMessage();
      if (m) return String(m);
    } catch (_) {
      /* fall through */
    }
  }
  if (err.message) return String(err.message);
  return String(err);
}

function main(argv) {
  let target = "python";
  let debug = false;
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-t" || a === "--target") {
      if (i + 1 >= argv.length) usage(`${a} needs a language`);
      target = argv[++i];
    } else if (a.startsWith("--target=")) {
      target = a.slice("--target=".length);
    } else if (a === "--debug") {
      debug = true;
    } else if (a === "--version") {
      positional.length = 0;
      positional.push("--version");
      break;
    } else if (a === "-h" || a === "--help") {
      usage();
    } else if (a.startsWith("-") && a !== "-") {
      usage(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }

  let compiler, yaml;
  try {
    compiler = require("kaitai-struct-compiler");
    yaml = require("js-yaml");
  } catch (err) {
    process.stderr.write(
      `compile.js: ${errorText(err)}\n` + "install the compiler first: npm install --prefix tools/ksy\n"
    );
    process.exit(1);
  }
  // 0.11 exports the compiler object; earlier versions exported a constructor.
  if (typeof compiler === "function") compiler = new compiler();

  if (positional[0] === "--version") {
    process.stdout.write(`${compiler.version}\n`);
    return Promise.resolve();
  }
  if (positional.length !== 2) usage("need INPUT.ksy and OUTDIR");
  const [input, outDir] = positional;
  if (compiler.languages && !compiler.languages.includes(target)) {
    usage(`unknown target ${target}; the compiler knows: ${compiler.languages.join(", ")}`);
  }

  const loadKsy = (file) => yaml.load(fs.readFileSync(file, "utf8"), { filename: file });
  const baseDir = path.dirname(path.resolve(input));
  const importer = {
    importYaml(name, mode) {
      try {
        if (mode !== "rel") {
          throw new Error(`absolute import '${name}' is not supported (no KSY library path)`);
        }
        return Promise.resolve(loadKsy(path.join(baseDir, `${name}.ksy`)));
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };

  let ksy;
  try {
    ksy = loadKsy(input);
  } catch (err) {
    process.stderr.write(`compile.js: ${input}: ${errorText(err)}\n`);
    process.exit(1);
  }

  return Promise.resolve()
    .then(() => compiler.compile(target, ksy, importer, debug))
    .then((files) => {
      fs.mkdirSync(outDir, { recursive: true });
      for (const name of Object.keys(files).sort()) {
        const dest = path.join(outDir, name);
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        fs.writeFileSync(dest, files[name]);
        process.stdout.write(`${dest}\n`);
      }
    })
    .catch((err) => {
      process.stderr.write(`compile.js: ${input}: ${errorText(err)}\n`);
      process.exit(1);
    });
}

main(process.argv.slice(2));
