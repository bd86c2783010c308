"""MkDocs hooks (mkdocs.yml `hooks:`): the pages generated when the site is built.

- `model-cards.md`: `keras_resnet.model_cards.page()`, from the preset registry, so the page cannot
  drift from it. Its wide table gets the page's whole width (no menu beside it).
- `api/`: the API reference. `api/index.md` lists every name of `keras_resnet.__all__`, each linked to
  its documentation on the page of the module that defines it; one page per public module of
  `keras_resnet` and of `zoo` renders that module's docstrings (mkdocstrings). Nothing is listed by
  hand: a new public name or module gets its entry at the next build.
- A line `--8<-- "FILE"` in a page is replaced by FILE from the repository root (README.md, RESULTS.md,
  BENCHMARKS.md, CHANGELOG.md stay where GitHub and the package index show them), with its links made
  relative to the site: `docs/X` becomes `X`, an included file becomes the page that includes it.
- Links to the published site (`site_url`, which the README uses, since it is also the package
  index page) become links between the pages, so the build checks them.
"""

import os
import pkgutil
import posixpath
import re
import sys

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"[ \t]*$', re.M)
# A Markdown link or image target: ](target) or ](target "title").
LINK = re.compile(r'\]\((?P<target>[^)\s]+)(?P<title>\s+"[^"]*")?\)')
API_TITLE = "API reference"
API_INDEX = "api/index.md"


def public_modules(package):
    """The public modules of `package` ("keras_resnet" or "zoo"), by name, sorted.

    Args:
        package: the imported package.

    Returns:
        The names of its modules that do not start with "_" (`__main__` included in those that do).
    """
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))


def api_pages():
    """{package name: [(module name, page path), ...]} for every public module."""
    import keras_resnet
    import zoo

    return {package.__name__: [(f"{package.__name__}.{name}", f"api/{package.__name__}/{name}.md")
                               for name in public_modules(package)]
            for package in (keras_resnet, zoo)}


def on_config(config):
    """Puts one nav entry per public module under "API reference"."""
    # The site documents this checkout's source (mkdocstrings reads it from `paths: [.]`); the generated
    # pages import it from there too, not whatever version is installed. (MkDocs restores sys.path
    # after it has imported this file, so this is done here.)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    sections = [{package: [{module.removeprefix(f"{package}."): path} for module, path in pages]}
                for package, pages in api_pages().items()]
    for i, entry in enumerate(config.nav):
        if isinstance(entry, dict) and entry.get(API_TITLE) == API_INDEX:
            config.nav[i] = {API_TITLE: [API_INDEX, *sections]}
            return config
    raise ValueError(f"mkdocs.yml's nav must hold `- {API_TITLE}: {API_INDEX}`, where docs/hooks.py adds the modules.")


def _summary(docstring):
    """The first sentence-line of a docstring, for a table cell."""
    first = (docstring or "").strip().split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|")


def api_index():
    """The API reference's first page: `keras_resnet.__all__`, each name linked to its documentation."""
    import griffe

    import keras_resnet

    package = griffe.load("keras_resnet", search_paths=[ROOT])
    rows = []
    for name in keras_resnet.__all__:
        module = keras_resnet._PUBLIC[name]
        target = package[f"{module}.{name}"]
        docstring = target.docstring.value if target.docstring else ""
        rows.append(f"| [`{name}`][keras_resnet.{module}.{name}] | [`{module}`](keras_resnet/{module}.md) | "
                    f"{_summary(docstring)} |")
    modules = ", ".join(f"[`{module}`]({path.removeprefix('api/')})" for module, path in api_pages()["zoo"])
    return "\n".join([
        "# API reference",
        "",
        "Generated from the docstrings when the site is built (docs/hooks.py). `import keras_resnet` gives "
        "the names below (`keras_resnet.__all__`), each loaded on first use; each is documented on the "
        "page of the module that defines it, which is also an import path (`keras_resnet.models.ResNet` is "
        "`keras_resnet.ResNet`). Every public module of `keras_resnet` and of `zoo` has its page in the "
        "menu; [Contributing](../contributing.md#where-things-live) says what each module is for.",
        "",
        "## `keras_resnet`",
        "",
        "| name | module | what it is |",
        "|---|---|---|",
        *rows,
        "",
        "## `zoo`",
        "",
        "The training recipes and the commands that run them (`keras-resnet COMMAND`, `python -m zoo.COMMAND`): "
        + modules + ".",
        "",
    ])


def on_files(files, config):
    """Adds the generated pages: the model cards and the API reference."""
    from keras_resnet import model_cards

    generated = {"model-cards.md": model_cards.page(), API_INDEX: api_index()}
    for pages in api_pages().values():
        for module, path in pages:
            generated[path] = f"::: {module}\n"
    for path, content in generated.items():
        if files.get_file_from_path(path) is not None:
            raise ValueError(f"docs/{path} is generated when the site is built (docs/hooks.py): delete the file.")
        files.append(File.generated(config, path, content=content))
    return files


def _includes(files):
    """{repository file included by a page: that page's src_uri}."""
    found = {}
    for file in files.documentation_pages():
        if file.abs_src_path and not file.generated_by:
            with open(file.abs_src_path, encoding="utf-8") as f:
                for match in INCLUDE.finditer(f.read()):
                    found[match["path"]] = file.src_uri
    return found


def _rewrite_links(markdown, page, config, files, included):
    """Links into the published site, to docs/ or to an included file, as links between pages."""
    # A page's URL as the published site has it ("api/", "" for the home page; MkDocs says "./").
    pages = {file.url.removeprefix("./"): file.src_uri for file in files.documentation_pages()}
    here = posixpath.dirname(page.file.src_uri)

    def relative(src_uri, anchor):
        return posixpath.relpath(src_uri, here or ".") + anchor

    def replace(match):
        target, anchor = match["target"], ""
        if "#" in target:
            target, anchor = target.split("#", 1)
            anchor = "#" + anchor
        if config.site_url and target.startswith(config.site_url):
            url = target[len(config.site_url):]
            if url not in pages:
                raise ValueError(f"{page.file.src_uri}: {match['target']} is no page of the site.")
            target = relative(pages[url], anchor)
        elif target in included:
            target = relative(included[target], anchor)
        elif target.startswith("docs/"):
            target = relative(target.removeprefix("docs/"), anchor)
        else:
            return match.group()
        return f"]({target}{match['title'] or ''})"

    return LINK.sub(replace, markdown)


# The model cards' table has eleven columns: that page gives the menu's width to it.
WIDE_PAGES = ("model-cards.md",)


def on_page_markdown(markdown, page, config, files):
    """Includes the repository's files where a page asks, and makes their links the site's."""
    if page.file.src_uri in WIDE_PAGES:
        page.meta.setdefault("hide", []).append("navigation")  # Material's page option
    included = _includes(files)

    def include(match):
        path = os.path.join(ROOT, match["path"])
        with open(path, encoding="utf-8") as f:
            return f.read()

    return _rewrite_links(INCLUDE.sub(include, markdown), page, config, files, included)
