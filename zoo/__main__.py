"""`python -m zoo` lists the recipes; training is `python -m zoo.train`."""

from zoo import recipes

if __name__ == "__main__":
    for name in recipes.names():
        summary = recipes.describe(name).strip().splitlines()[0]
        print(f"{name:24s} {summary}")
