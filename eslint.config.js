// ESLint for the chart page's modules and their Node tests (`make lint`).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["src/tsgate/ui/static/vendor/**", "tests/e2e/vendor/**", "node_modules/**", ".venv/**", "var/**"] },
  js.configs.recommended,
  {
    files: ["src/tsgate/ui/static/js/**/*.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.browser, MessagePack: "readonly" } },
  },
  {
    files: ["tests/js/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.node } },
  },
  {
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always"],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
];
