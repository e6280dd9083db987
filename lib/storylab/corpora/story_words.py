"""Word lists for the embedded story corpus: the nouns, names and phrases its slots choose from.

Plain data, so the vocabulary can grow without touching the story code. Rules a list must
keep (checked by tests/test_stories.py): entries are distinct, lowercase unless they are
names, and no entry is a whole-word prefix of another in the same list ("ice" beside
"ice cream" would let one text come from two choices). Names never equal another word.
"""

from __future__ import annotations

GIRL_NAMES = """
Lily Mia Emma Ava Sophia Olivia Isabella Amelia Harper Ella Chloe Zoe Grace Lucy Anna
Sara Rosie Molly Sophie Hannah Ellie Maya Nora Layla Leah Clara Alice Stella Luna Aria
Penelope Abigail Emily Madison Elena Naomi Julia Kate Katie Jenny Amy Beth Lola Millie
Evie Freya Isla Esme Matilda Martha Florence Bella Nina Tina Lisa Laura Megan Holly Jade
Kayla Paige Priya Anika Mei Yuki Aiko Ling Fatima Amira Leila Zara Aisha Nadia Sofia
Lucia Carmen Rosa Elsa Ingrid Greta Heidi Astrid Mila Vera Olga Tara Fiona Maeve Niamh
Dora Edith Mabel Ada Thea Lena Gemma Alma Bianca Celia Diana Eva Gina Hilda Irene Jana
Kira Lara Mira Nell Opal Pia Quinn Rita Tess Una Wendy Yara Zelda Bonnie Cora Dina Elise
Frida Gwen Ines Josie Kiki Lottie
""".split()

BOY_NAMES = """
Tim Ben Max Sam Tom Jack Leo Noah Liam Oliver Lucas Ethan Mason Logan James Henry Owen
Jacob Daniel Leon Finn Theo Oscar Archie Harry Charlie Alfie Freddie George Arthur Louis
Hugo Felix Jasper Milo Otto Ezra Eli Adam Aaron Caleb Isaac Joel Luke Mark Paul Peter
Silas Victor Hector Omar Ali Yusuf Karim Ravi Arjun Kai Kenji Hiro Chen Wei Diego Mateo
Pablo Carlos Marco Luca Enzo Lars Sven Nils Erik Bruno Anton Ivan Pavel Sean Rory Cian
Dylan Evan Rhys Gareth Alex Andy Billy Bobby Danny Eddie Frankie Gus Jake Joe Kevin Larry
Mike Ned Pete Ricky Steve Ted Vince Zack Abel Cody Dean Ellis Fred Gabe Hank Ike
Jonah Kirk Lenny Moe Nico Ollie Ross Toby Wes Yuri Zeke Benny Colin Dex Emil
""".split()

PET_NAMES = """
Rover Buddy Fifi Whiskers Rex Coco Barkley Peppy Mopsy Paddy Socks Bubba Ziggy Dotty
Nibbles Pickles Sprocket Bodhi Snowball Shadow Boots Fozzie Misty Pogo Sparky Bingo
Scout Ripley Oreo Mallow Poppet Tinkerbell Wiggles Nugget Smudge Domino Jellybean
Skipper Pip Zippy Rascal Chip Flopsy Sunshine Twinkle Goldie Snickers Ruffles Taffy Bandit
""".split()

PET_ANIMALS = ["dog", "puppy", "cat", "kitten", "bunny", "hamster", "parrot", "turtle", "goldfish",
               "mouse", "guinea pig", "pony", "duck", "chick", "lamb", "goat", "hedgehog", "canary",
               "lizard", "frog", "ferret", "piglet"]

WILD_ANIMALS = [
    "lion", "tiger", "elephant", "giraffe", "zebra", "monkey", "bear", "wolf", "fox", "deer",
    "owl", "eagle", "penguin", "seal", "dolphin", "whale", "shark", "octopus", "crab", "starfish",
    "kangaroo", "koala", "panda", "hippo", "rhino", "camel", "llama", "squirrel", "raccoon",
    "beaver", "moose", "otter", "badger", "swan", "goose", "peacock", "flamingo", "parrot fish",
    "butterfly", "ladybug", "bee", "snail", "worm", "grasshopper", "dragonfly", "spider", "ant",
    "cow", "horse", "pig", "sheep", "donkey", "rooster", "hen", "chipmunk", "jellyfish",
    "sea turtle", "crocodile", "gorilla", "polar bear", "ostrich", "toucan", "mole",
    "hedgehog", "rabbit", "duck", "frog", "turtle", "mouse", "bat", "lobster", "sea lion", "walrus",
    "lamb", "calf", "foal", "puppy", "kitten", "chick", "goat", "pony", "lizard", "chameleon", "sloth",
    "lemur", "leopard", "cheetah", "buffalo", "yak", "reindeer", "hare", "weasel", "stork", "pelican",
    "heron", "beetle", "caterpillar", "firefly", "moth", "tadpole", "salmon", "clownfish", "seahorse"]

BIRDS = ["robin", "sparrow", "bluebird", "pigeon", "crow", "blackbird", "finch", "duckling",
         "woodpecker", "seagull", "hummingbird", "wren", "magpie", "dove", "baby bird", "jay"]

TOYS = [
    "ball", "kite", "doll", "teddy bear", "robot", "train", "truck", "car", "boat", "plane",
    "drum", "puzzle", "yo-yo", "spinning top", "jump rope", "balloon", "puppet", "rocket",
    "dinosaur", "unicorn", "castle", "tea set", "bucket", "shovel", "whistle", "marble",
    "crayon", "paint box", "music box", "toy horse", "rag doll", "fire truck", "sailboat",
    "teapot", "hat", "scarf", "necklace", "bracelet", "ring", "crown", "wand", "sword",
    "shield", "backpack", "lunch box", "bike", "scooter", "wagon", "sled", "skateboard",
    "storybook", "picture book", "notebook", "pencil", "flashlight", "compass", "map",
    "camera", "telescope", "magnet", "shell", "feather", "pebble", "button box", "bell",
    "piggy bank", "blanket", "pillow", "glove", "mitten", "sock", "boot", "umbrella",
    "kazoo", "flute", "violin", "guitar", "harmonica", "xylophone", "trumpet", "top hat",
    "toy truck", "toy car", "race car", "jigsaw", "kaleidoscope", "snow globe", "pinwheel",
    "beach ball", "rubber duck", "toy soldier", "stuffed bunny", "stuffed lion", "toy piano",
    "bubble wand", "paper crown", "toy drum", "slinky", "hula hoop", "frisbee", "building blocks",
    "toy tractor", "toy dragon", "wind-up mouse", "toy telephone", "magic lamp", "treasure box",
    "little lantern", "glitter jar", "wooden spoon", "toy bus", "stuffed owl", "toy digger",
    "rainbow ribbon", "tambourine", "bongo drum", "cowboy hat", "pirate ship",
    "toy submarine", "toy helicopter"]

FOODS = [
    "apple", "banana", "cookie", "cupcake", "sandwich", "orange", "pear", "peach", "plum",
    "muffin", "pancake", "waffle", "pie", "cake", "lollipop", "candy cane", "donut", "pretzel",
    "bagel", "carrot", "cheese", "cracker", "grape", "strawberry", "cherry", "melon",
    "watermelon", "lemon", "mango", "pineapple", "popsicle", "ice cream", "jelly bean",
    "chocolate bar", "gingerbread man", "bun", "roll", "biscuit", "scone", "tart", "pizza",
    "hot dog", "taco", "burrito", "noodle cup", "rice ball", "dumpling", "sushi roll",
    "corn cob", "potato", "tomato", "cucumber", "egg", "omelet", "toast", "sausage",
    "meatball", "cinnamon roll", "brownie", "fudge", "marshmallow", "honey cake", "jam tart",
    "granola bar", "string cheese", "rice cake", "apricot", "kiwi", "coconut",
    "blueberry muffin", "peanut butter sandwich", "ham sandwich", 
    "pumpkin pie", "jam sandwich", "oatmeal cookie", "sugar cookie",
    "slice of bread", "bowl of soup", "bowl of cereal", "bowl of berries",
    "boiled egg", "baked potato", "corn muffin", "rice cracker", "fig", "nectarine", "papaya",
    "tangerine", "raspberry tart", "fruit bar", "caramel apple", "pudding cup", "yogurt cup",
    "veggie wrap", "croissant"]

PLACES = [
    "park", "beach", "forest", "zoo", "farm", "lake", "river", "hill", "meadow", "playground",
    "market", "library", "museum", "pond", "garden", "mountain", "valley", "town square",
    "bakery", "toy shop", "school", "castle", "harbor", "island", "cave", "field", "orchard",
    "woods", "fair", "circus", "aquarium", "swimming pool", "candy shop", "pet shop",
    "flower shop", "train station", "airport", "bridge", "lighthouse", "waterfall", "jungle",
    "desert", "village", "city", "barn", "campsite", "picnic spot", "ice rink", "carousel",
    "theater",
    "bus stop", "post office", "fire station", "police station", "hospital", "dentist", 
    "duck pond", "boat dock", "ice cream shop", "bookshop", "farmers market", "sandpit", "skate park",
    "tennis court", "soccer field", "riverbank", "woodland path", "old mill", "windmill", "greenhouse",
    "rose garden", "berry patch", "pumpkin patch", "hilltop", "seaside", "sand dunes", "big lake",
    "playroom", "art class"]

HOMES = ["little house", "big house", "cottage", "tree house", "farmhouse", "blue house",
         "yellow house", "red house", "white house", "tall building", "small flat", "cabin",
         "house by the sea", "house on the hill", "house in the woods", "green house",
    "wooden house", "stone cottage", "pink house", "house with a garden", "house near the park",
    "big old house", "apartment", "farm cottage", "little cabin", "house on the corner"]

FURNITURE = ["bed", "couch", "table", "chair", "desk", "toy box", "closet", "door", "rug",
             "stairs", "sofa", "bookshelf", "kitchen sink", "bathtub", "window", "piano",
             "cupboard", "dresser", "laundry basket", "coat rack", "big plant", "armchair",
             "bench", "crib", "fridge", "oven", "dog bed", "shoe rack", "curtains", "lamp",
    "bunk bed", "rocking chair", "toy shelf", "high chair", "footstool", "wardrobe", "trunk",
    "fireplace", "kitchen table", "sewing basket", "railing", "dollhouse",
    "bean bag", "doormat"]

COLOURS = ["red", "blue", "green", "yellow", "purple", "pink", "orange", "white", "black",
           "brown", "gray", "gold", "silver", "golden", "sky blue", "dark green", "light pink",
           "bright red", "navy", "violet", "turquoise", "crimson", "lime", "beige",
    "cream", "peach", "mint green", "lemon yellow", "cherry red", "ruby red", "coral", "lilac", "plum",
    "teal", "rusty red", "sandy", "snow white", "jet black", "chocolate brown", "sunny yellow"]

OBJECT_ADJECTIVES = [
    "big", "small", "tiny", "shiny", "soft", "fluffy", "old", "new", "sparkly", "bumpy",
    "smooth", "round", "square", "long", "short", "heavy", "light", "fuzzy", "striped",
    "spotted", "pretty", "funny", "strange", "special", "magic", "wooden", "plastic", "paper",
    "glass", "metal", "woolly", "squeaky", "noisy", "quiet", "bouncy", "sticky", "shimmering",
    "glowing", "giant", "little", "lovely", "beautiful", "clean", "dusty", "muddy", "wet",
    "dry", "warm", "cold", "bright", "dark", "colorful", "lucky", "secret", "precious",
    "favorite", "broken", "crooked", "wobbly", "tall",
    "enormous", "teeny", "gleaming", "fancy", "plain", "cozy", "silky", "crunchy", "chewy",
    "soggy", "rusty", "tattered", "brand new", "handmade", "painted", "knitted", "sparkling",
    "polka dot", "checkered"]

TRAITS = ["kind", "brave", "curious", "shy", "happy", "cheerful", "clever", "gentle",
          "friendly", "playful", "quiet", "busy", "funny", "silly", "helpful", "honest",
          "careful", "sweet", "polite", "smart", "bold", "lively", "caring", "patient",
          "hardworking", "imaginative", "thoughtful", "loving", "joyful", "sleepy", "small",
          "young", "generous", "eager", "bright", "good", "merry", "adventurous", "noisy",
          "sunny", "daring", "dreamy", "tidy", "wise",
    "cheeky", "mischievous", "calm", "chatty", "giggly", "jolly", "proud", "nimble",
    "spirited", "earnest", "graceful", "courageous", "clumsy", "bouncy", "sensible", "quick", "nosy",
    "bashful", "lucky", "sporty", "artistic", "musical", "cuddly", "brainy",
    "chirpy", "fearless", "plucky"]

GOOD_FEELINGS = ["happy", "glad", "proud", "excited", "thankful", "joyful", "cheerful",
                 "calm", "safe", "warm inside", "relieved", "delighted", "pleased", "thrilled",
    "grateful", "peaceful", "brave", "loved", "hopeful", "content", "cozy", "light as a feather",
    "strong", "bubbly", "giggly", "lucky", "special", "satisfied", "merry", "jolly", "blessed",
    "amazed"]

BAD_FEELINGS = ["sad", "scared", "worried", "upset", "lonely", "angry", "grumpy", "afraid",
                "nervous", "cross", "gloomy", "unhappy", "frightened", "confused", "tired",
                "miserable", "shaky", "jealous", "embarrassed", "helpless", "sorry", "sulky", "teary",
                "lost", "hurt", "cranky", "fed up", "heavy inside", "glum", "moody", "blue", "mopey"]

# (base, past, -ing) of things a child loves doing.
ACTIVITIES = [
    ("draw pictures", "drew pictures", "drawing pictures"),
    ("sing songs", "sang songs", "singing songs"),
    ("play tag", "played tag", "playing tag"),
    ("build towers", "built towers", "building towers"),
    ("read books", "read books", "reading books"),
    ("ride a bike", "rode a bike", "riding a bike"),
    ("dance", "danced", "dancing"),
    ("jump in puddles", "jumped in puddles", "jumping in puddles"),
    ("climb trees", "climbed trees", "climbing trees"),
    ("dig in the sand", "dug in the sand", "digging in the sand"),
    ("bake cookies", "baked cookies", "baking cookies"),
    ("fly kites", "flew kites", "flying kites"),
    ("swim", "swam", "swimming"),
    ("run fast", "ran fast", "running fast"),
    ("skip rope", "skipped rope", "skipping rope"),
    ("pick flowers", "picked flowers", "picking flowers"),
    ("catch bugs", "caught bugs", "catching bugs"),
    ("watch the clouds", "watched the clouds", "watching the clouds"),
    ("make mud pies", "made mud pies", "making mud pies"),
    ("paint rocks", "painted rocks", "painting rocks"),
    ("play hide and seek", "played hide and seek", "playing hide and seek"),
    ("kick a ball", "kicked a ball", "kicking a ball"),
    ("tell jokes", "told jokes", "telling jokes"),
    ("count stars", "counted stars", "counting stars"),
    ("feed the ducks", "fed the ducks", "feeding the ducks"),
    ("collect shells", "collected shells", "collecting shells"),
    ("write stories", "wrote stories", "writing stories"),
    ("help in the garden", "helped in the garden", "helping in the garden"),
    ("roll down hills", "rolled down hills", "rolling down hills"),
    ("blow bubbles", "blew bubbles", "blowing bubbles"),
    ("splash in the pool", "splashed in the pool", "splashing in the pool"),
    ("make funny faces", "made funny faces", "making funny faces"),
    ("hum little tunes", "hummed little tunes", "humming little tunes"),
    ("look at bugs", "looked at bugs", "looking at bugs"),
    ("cut paper stars", "cut paper stars", "cutting paper stars"),
    ("stack cups", "stacked cups", "stacking cups"),
    ("throw pebbles in the pond", "threw pebbles in the pond", "throwing pebbles in the pond"),
    ("spin in circles", "spun in circles", "spinning in circles"),
    ("hop like a frog", "hopped like a frog", "hopping like a frog"),
    ("fold paper boats", "folded paper boats", "folding paper boats"),
    ("sleep in the sun", "slept in the sun", "sleeping in the sun"),
    ("wave at trains", "waved at trains", "waving at trains"),
    ("chase butterflies", "chased butterflies", "chasing butterflies"),
    ("explore the yard", "explored the yard", "exploring the yard"),
    ("sort buttons", "sorted buttons", "sorting buttons"),
    ("knit scarves", "knitted scarves", "knitting scarves"),
    ("whistle tunes", "whistled tunes", "whistling tunes"),
    ("slide down slides", "slid down slides", "sliding down slides"),
    ("swing high", "swung high", "swinging high"),
    ("march like a soldier", "marched like a soldier", "marching like a soldier"),
    ("play the drums", "played the drums", "playing the drums"),
    ("play the piano", "played the piano", "playing the piano"),
    ("build sand castles", "built sand castles", "building sand castles"),
    ("make paper hats", "made paper hats", "making paper hats"),
    ("watch the birds", "watched the birds", "watching the birds"),
    ("water the plants", "watered the plants", "watering the plants"),
    ("stomp in the leaves", "stomped in the leaves", "stomping in the leaves"),
    ("make snowmen", "made snowmen", "making snowmen"),
    ("bounce on the trampoline", "bounced on the trampoline", "bouncing on the trampoline"),
    ("do puzzles", "did puzzles", "doing puzzles"),
    ("race toy cars", "raced toy cars", "racing toy cars"),
    ("look at the stars", "looked at the stars", "looking at the stars"),
    ("walk the dog", "walked the dog", "walking the dog"),
    ("color in books", "colored in books", "coloring in books"),
    ("play dress up", "played dress up", "playing dress up"),
    ("learn new words", "learned new words", "learning new words"),
    ("help in the kitchen", "helped in the kitchen", "helping in the kitchen"),
    ("ride the swings", "rode the swings", "riding the swings"),
    ("skate in the park", "skated in the park", "skating in the park"),
    ("play with clay", "played with clay", "playing with clay")]

RELATIVES = ["mom", "dad", "grandma", "grandpa", "big sister", "big brother", "aunt", "uncle",
             "nanny", "cousin"]

HELPERS = ["old lady", "old man", "baker", "farmer", "mailman", "teacher", "neighbor",
           "grandma next door", "shopkeeper", "little boy", "little girl", "fisherman",
           "painter", "gardener", "doctor", "bus driver",
    "old woman", "tired mom", "crossing guard", "librarian", "zookeeper", "ice cream man", "nurse",
    "postwoman", "fireman", "grandpa next door", "lady with a cane", "man with a cart",
    "street sweeper", "little puppy", "school cook"]

FEARS = [
    ("the dark", "dark"), ("big dogs", "dog"), ("deep water", "water"), ("the tall slide", "slide"),
    ("loud thunder", "thunder"), ("buzzing bees", "bee"), ("the vacuum cleaner", "vacuum"),
    ("spiders", "spider"), ("the high swing", "swing"), ("the old stairs", "stairs"),
    ("the noisy train", "train"), ("the basement", "basement"), ("going to the dentist", "dentist"),
    ("the first day of school", "school"), ("the big waves", "waves"), ("riding a horse", "horse"),
]

FLOWERS = ["sunflower", "tulip", "daffodil", "poppy", "violet", "marigold", "bluebell",
           "orchid", "pansy", "lavender", "dandelion", "buttercup", "lotus", "snowdrop",
           "carnation", "peony"]

VEGETABLES = ["carrot", "bean", "pea", "tomato", "pumpkin", "potato", "onion", "lettuce",
              "radish", "beet", "cabbage", "pepper", "squash", "spinach", "cucumber", "melon"]

# (what they bake, "the ___ was/were ready", was/were, a piece of it)
BAKED = [("cookies", "cookies", "were", "cookie"), ("muffins", "muffins", "were", "muffin"),
         ("cupcakes", "cupcakes", "were", "cupcake"), ("pancakes", "pancakes", "were", "pancake"),
         ("bread", "bread", "was", "slice"), ("an apple pie", "pie", "was", "slice of pie"),
    ("a chocolate cake", "cake", "was", "slice of cake"),
    ("banana bread", "banana bread", "was", "thick slice"),
    ("gingerbread men", "gingerbread men", "were", "gingerbread man"),
    ("biscuits", "biscuits", "were", "biscuit"),
         ("waffles", "waffles", "were", "waffle"), ("a berry tart", "tart", "was", "piece of tart"),
         ("cinnamon buns", "buns", "were", "cinnamon bun"), ("scones", "scones", "were", "scone"),
    ("a carrot cake", "carrot cake", "was", "piece of cake"),
    ("oat bars", "oat bars", "were", "oat bar")]

CAKES = ["a chocolate cake", "a strawberry cake", "a lemon cake", "a vanilla cake", "a rainbow cake",
         "a big round cake", "a cake shaped like a star", "a tall pink cake", "a coconut cake",
         "an orange cake"]

INGREDIENTS = ["flour", "sugar", "eggs", "butter", "milk", "honey", "salt", "raisins",
               "nuts", "berries", "chocolate chips", "oats", "cinnamon", "vanilla", "lemon juice",
               "jam", "cream", "apples", "bananas", "yogurt",
    "cocoa", "peanut butter", "maple syrup", "coconut", "carrots", "pumpkin", "baking soda",
    "brown sugar", "lemon zest", "sprinkles"]

GIFTS = ["a red bike", "a big box of crayons", "a book about dinosaurs", "a soft teddy bear",
         "a shiny new ball", "a kite with a long tail", "a toy train", "a blue scarf",
         "a music box", "a little drum", "a puzzle with a hundred pieces", "a box of paints",
         "a pair of roller skates", "a toy rocket", "a yellow raincoat", "a magic wand",
         "a bag of marbles", "a picture book", "a spinning top", "a doll with curly hair",
         "a funny hat", "a jar of bubbles", "a toy boat", "a flashlight", "a telescope",
    "a box of chocolates", "a toy car", "a stuffed bunny", "a set of markers", "a new backpack",
    "a coloring book", "a bubble wand", "a pair of mittens", "a snow globe", "a pinwheel",
    "a storybook about pirates", "a tiny robot", "a tea set", "a fishing rod", "a xylophone"]

STORM_SOUNDS = ["boom", "crash", "rumble", "bang", "whoosh", "crack"]

WEATHER_STARTS = ["dark clouds filled the sky", "the wind began to blow hard",
                  "big drops of rain began to fall", "the sky turned gray and angry",
                  "thunder rumbled far away", "the trees began to sway and shake",
                  "a cold wind howled through the trees", "the sky flashed with lightning",
                  "hail began to bounce on the ground", "the clouds grew dark and heavy",
                  "rain poured down in buckets", "a loud clap of thunder shook the windows"]

TIMES = ["One day", "One morning", "One afternoon", "One evening", "One sunny day",
         "One rainy day", "One cold morning", "One warm afternoon", "On Monday",
         "On Saturday", "On Sunday", "Early one morning", "Later that week", "One spring day",
         "One summer day", "One autumn day", "One winter morning", "The next day", "One Tuesday",
         "One Friday afternoon", "One bright morning", "One snowy day", "One windy afternoon",
         "One foggy morning", "After breakfast one day", "One quiet evening", "On a hot summer day",
         "One chilly morning", "On the first day of spring", "One lazy Sunday"]

TOWNS = ["small town", "quiet village", "busy city", "little village by the sea",
         "town near the mountains", "village near the forest", "sunny town", "snowy town",
         "town by a river", "land far away",
    "windy town", "town with a big clock", "village on a hill", "town by the lake", "faraway kingdom",
    "cozy little town", "village in the valley", "seaside town"]

LESSONS = {
    "sharing": ["sharing makes everyone happy", "it is more fun to share",
                "a friend is worth more than a toy", "sharing is a kind thing to do",
                "good things are better when you share them", "giving feels as good as getting"],
    "careful": ["it is good to take care of your things", "looking carefully pays off",
                "friends can help you find what you lose", "it is good to keep your things in one place",
    "lost things often turn up where you least expect", "it helps to stay calm when something is lost"],
    "brave": ["being brave means trying even when you are scared", "fear gets smaller when you face it",
              "it is okay to be scared and try anyway", "a little courage goes a long way",
              "brave hearts can be small too", "new things are only scary at first"],
    "kind": ["helping others is the best feeling", "a small kindness can make a big difference",
             "it is good to help people who need it", "being kind makes the world brighter",
             "kind hands make happy hearts", "everyone needs help sometimes"],
    "friends": ["new friends can be found anywhere", "saying hello is the first step to a friendship",
                "friends make every day better", "it is nice to include everyone",
                "a kind word can start a friendship", "sharing a game is a good way to make a friend"],
    "listen": ["it is important to listen to grown-ups", "rules are there to keep us safe",
               "it is better to ask first", "saying sorry makes things right",
               "grown-ups often know best", "listening can save a lot of trouble"],
    "patience": ["good things take time", "waiting can be worth it", "patience helps things grow",
                 "hard work and patience go together",
                 "little by little, things get done", "the best things are worth the wait"],
    "together": ["working together makes hard things easy", "two heads are better than one",
                 "everything is easier with a friend", "teamwork can fix almost anything",
                 "many hands make light work", "it is fun to do things together"],
}

HAIR = ["curly", "straight", "red", "brown", "black", "blond", "short", "long", "wavy", "messy",
        "golden", "dark", "fluffy", "shiny", "bouncy", "thick",
    "bright red", "soft curly", "spiky", "braided"]

SMILES = ["big", "bright", "warm", "shy", "happy", "wide", "sunny", "cheeky", "gentle", "funny",
          "sweet", "kind", "silly", "toothy",
    "lovely", "crooked", "cheerful", "giant", "little", "friendly"]

ANIMAL_ACTIONS = ["eating leaves", "swimming in the water", "sleeping in the sun", "rolling in the mud",
                  "jumping up and down", "making funny noises", "looking for food", "splashing around",
                  "climbing a rock", "hiding behind a tree", "chasing its tail", "taking a bath",
                  "munching on grass", "flapping its wings", "yawning", "waving its tail",
    "digging a hole", "drinking from the pond", "sniffing the flowers", "nibbling a carrot",
    "running in circles", "playing with its friends", "sitting very still", "stretching in the sun",
    "carrying a stick", "hopping around"]

PET_ACTIONS = ["wagged its tail", "ran around in circles", "jumped up and down", "rolled over",
               "curled up by the door", "made a happy noise", "licked its paws", "chased a fly",
               "hid under a chair", "yawned a big yawn",
    "sniffed the air", "wiggled its nose", "rolled in the grass", "fell asleep in a sunny spot",
    "played with a string", "barked at a leaf"]

ADVERBS = ["slowly", "quickly", "carefully", "quietly", "happily", "gently", "softly", "bravely",
           "proudly", "eagerly", "calmly", "sadly", "loudly", "nervously", "kindly", "brightly",
           "cheerfully", "shyly", "patiently", "sweetly", "boldly", "gladly", "warmly", "politely",
    "with a smile", "right away", "all at once", "very slowly", "with a grin",
    "in a tiny voice", "in a big voice", "with a giggle", "with a sigh", "with a nod", "at last"]

EXCLAIMS = ["Wow", "Look", "Yay", "Hooray", "Oh my", "Whee", "Yippee", "Oh wow", "Hurray", "Ta-da", "Aha", "Hey",
            "Goodness", "Golly", "Woohoo", "Yes"]

DRINKS = ["milk", "warm milk", "apple juice", "orange juice", "water", "hot cocoa", "lemonade",
          "tea", "grape juice", "cold water",
    "pink lemonade", "chocolate milk", "strawberry milk", "peach juice", "cold milk", "warm tea"]

GAMES = ["musical chairs", "hide and seek", "tag", "pass the parcel", "freeze dance",
         "duck duck goose", "treasure hunt", "hopscotch", "leapfrog", "catch", "red light green light",
         "simon says", "tug of war", "marbles",
    "follow the leader", "i spy", "hot potato", "jump rope", "sack race", "card games", "board games"]

SONGS = ["soft", "happy", "silly", "quiet", "little", "sleepy", "funny", "sweet", "cheerful", "old"]

DAYS = ["warm", "sunny", "cool", "bright", "cloudy", "windy", "lovely", "quiet", "hot", "crisp",
        "snowy", "foggy", "beautiful", "busy"]

SKIES = ["blue and clear", "full of fluffy clouds", "pink and orange", "pale blue", "bright and blue",
         "gray and soft", "full of birds"]
